/**
 * The query path end to end: real nats-server, real actor processes, the digits MLP in ONNX Runtime.
 * Every digits row goes through HTTP; NATS is spoken with a plain nats.js client and msgpackr using
 * only what docs/protocol.md says.
 */
import path from 'node:path';
import { expect } from 'chai';
import { Packr } from 'msgpackr';
import { connect, headers, type NatsConnection } from 'nats';
import * as ort from 'onnxruntime-node';
import { DEMO, registerDemo } from '../../cli/stack.js';
import { loadDigits, type DigitsDataset } from '../../infra/models/digits-data.js';
import { PROJECT_ROOT } from '../../shared/process.js';
import { startTestNats, stopTestNats, type TestNats } from '../helpers/nats.js';
import { postJson, postJsonRetrying, startTestStack, stopTestStack, waitForModelAnswer, type TestStack } from '../helpers/stack.js';

// A client's msgpack: standard types only, as docs/protocol.md asks.
const msgpack = new Packr({ useRecords: false });
const argmax = (xs: ArrayLike<number>): number => Array.prototype.indexOf.call(xs, Math.max(...Array.from(xs)));

describe('query path (real processes)', function () {
  this.timeout(120_000);
  let nats: TestNats;
  let sys: TestStack;
  let digits: DigitsDataset;
  let direct: Float32Array[];
  let nc: NatsConnection;

  before(async () => {
    nats = await startTestNats();
    sys = await startTestStack(nats);
    await registerDemo(sys.stack);
    digits = await loadDigits(path.join(PROJECT_ROOT, 'infra', 'models', 'data', 'digits.csv.gz'));
    // The reference: the same ONNX file run directly in onnxruntime-node.
    const session = await ort.InferenceSession.create(DEMO.model.model_data_path);
    const n = digits.pixels.length;
    const batch = new Float32Array(n * 64);
    digits.pixels.forEach((row, i) => batch.set(row, i * 64));
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', batch, [n, 64]) });
    const probs = out[session.outputNames[0]!]!.data as Float32Array;
    direct = digits.pixels.map((_, i) => probs.slice(i * 10, (i + 1) * 10));
    nc = await connect({ servers: nats.url });
  });

  after(async () => {
    await nc?.close();
    await stopTestStack(sys);
    await stopTestNats(nats);
  });

  it('query path - every digits row over HTTP is classified like a direct onnxruntime run, ≥ 95% correct', async () => {
    let correct = 0;
    let maxDiff = 0;
    const rows = digits.pixels.map((_, i) => i);
    const concurrency = 8;
    await Promise.all(Array.from({ length: concurrency }, async (_, w) => {
      for (let k = w; k < rows.length; k += concurrency) {
        const i = rows[k]!;
        // Eight clients at once on a 2-vCPU machine: a stall can make the scheduler refuse one (retryable 503).
        const res = await postJsonRetrying(`${sys.stack.ingressUrl}/digits/predict`, { input: Array.from(digits.pixels[i]!) });
        expect(res.status, JSON.stringify(res.body)).to.equal(200);
        expect(res.body.default, JSON.stringify(res.body)).to.equal(false);
        const output = res.body.output as number[];
        expect(output).to.have.length(10);
        output.forEach((p, j) => (maxDiff = Math.max(maxDiff, Math.abs(p - direct[i]![j]!))));
        if (argmax(output) === digits.labels[i]) correct++;
      }
    }));
    const accuracy = correct / digits.pixels.length;
    expect(accuracy).to.be.at.least(0.95);
    expect(maxDiff).to.be.below(1e-6);
  });

  it('query path - answers input_batch with one prediction per input', async () => {
    const res = await postJson(`${sys.stack.ingressUrl}/digits/predict`, { input_batch: digits.pixels.slice(0, 5).map((p) => Array.from(p)) });
    expect(res.status).to.equal(200);
    const preds = res.body.batch_predictions as { output: number[]; default: boolean; query_id: string }[];
    expect(preds).to.have.length(5);
    preds.forEach((p, i) => {
      expect(p.default).to.equal(false);
      expect(argmax(p.output)).to.equal(argmax(direct[i]!));
    });
    expect(new Set(preds.map((p) => p.query_id)).size).to.equal(5);
  });

  it('query path - NATS with msgpack returns the output tensor as raw little-endian bytes', async () => {
    const msg = await nc.request('clipper.predict.digits', msgpack.pack({ input: Array.from(digits.pixels[7]!) }), { timeout: 5_000 });
    expect(msg.headers?.hasError ?? false).to.equal(false);
    const res = msgpack.unpack(msg.data) as { v: number; query_id: string; output: { dtype: string; shape: number[]; data: Uint8Array }; default: boolean };
    expect(res.v).to.equal(1);
    expect(res.default).to.equal(false);
    expect(res.output.dtype).to.equal('FP32');
    expect(res.output.shape).to.deep.equal([10]);
    const probs = new Float32Array(new Uint8Array(res.output.data).buffer);
    expect(Array.from(probs)).to.deep.equal(Array.from(direct[7]!));
  });

  it('query path - NATS with msgpack accepts an input tensor of raw bytes', async () => {
    const data = new Uint8Array(digits.pixels[11]!.buffer.slice(0));
    const msg = await nc.request('clipper.predict.digits', msgpack.pack({ input: { dtype: 'FP32', shape: [64], data } }), { timeout: 5_000 });
    const res = msgpack.unpack(msg.data) as { output: { data: Uint8Array } };
    expect(Array.from(new Float32Array(new Uint8Array(res.output.data).buffer))).to.deep.equal(Array.from(direct[11]!));
  });

  it('query path - NATS with JSON (Content-Type header) answers in JSON', async () => {
    const h = headers();
    h.set('Content-Type', 'application/json');
    const msg = await nc.request('clipper.predict.digits', new TextEncoder().encode(JSON.stringify({ input: Array.from(digits.pixels[3]!) })), { timeout: 5_000, headers: h });
    expect(msg.headers?.get('Content-Type')).to.equal('application/json');
    const res = JSON.parse(new TextDecoder().decode(msg.data)) as { output: number[]; default: boolean; query_id: string };
    expect(res.default).to.equal(false);
    expect(res.query_id).to.be.a('string').and.not.empty;
    res.output.forEach((p, j) => expect(p).to.be.closeTo(direct[3]![j]!, 1e-6));
  });

  it('policy actor - answers a query sent to its shard directly', async () => {
    // The shared stack runs `single` in the ingress; ask a policy shard directly over NATS.
    const msg = await nc.request('clipper.policy.digits.0', msgpack.pack({
      v: 1, query_id: 'direct-policy', app: 'digits', uid: '0', deadline_unix_ms: Date.now() + 5_000,
      input: { dtype: 'FP32', shape: [64], data: new Uint8Array(digits.pixels[5]!.buffer.slice(0)) },
    }), { timeout: 6_000 });
    const res = msgpack.unpack(msg.data) as { query_id: string; default: boolean; models: string[]; output: { data: Uint8Array } };
    expect(res.query_id).to.equal('direct-policy');
    expect(res.default).to.equal(false);
    expect(res.models).to.deep.equal(['digits-mlp:1']);
    expect(Array.from(new Float32Array(new Uint8Array(res.output.data).buffer))).to.deep.equal(Array.from(direct[5]!));
  });

  it('query path - HTTP with a msgpack body answers in msgpack, tensor bytes untouched', async () => {
    const data = new Uint8Array(digits.pixels[13]!.buffer.slice(0));
    const res = await fetch(`${sys.stack.ingressUrl}/digits/predict`, { method: 'POST', headers: { 'Content-Type': 'application/msgpack' }, body: msgpack.pack({ input: { dtype: 'FP32', shape: [64], data } }) });
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('application/msgpack');
    const body = msgpack.unpack(new Uint8Array(await res.arrayBuffer())) as { default: boolean; output: { dtype: string; data: Uint8Array } };
    expect(body.default).to.equal(false);
    expect(Array.from(new Float32Array(new Uint8Array(body.output.data).buffer))).to.deep.equal(Array.from(direct[13]!));
    const bad = await fetch(`${sys.stack.ingressUrl}/digits/predict`, { method: 'POST', headers: { 'Content-Type': 'application/msgpack' }, body: new Uint8Array([0xc1]) });
    expect(bad.status).to.equal(400);
    expect((msgpack.unpack(new Uint8Array(await bad.arrayBuffer())) as { code: string }).code).to.equal('CLIPPER_ERR_PROTO_DECODE');
  });

  it('query path - a row the model cannot take fails alone; the queries batched with it are answered', async () => {
    // An app with no input_shape passes any length through; the model takes 64 values per row.
    await sys.admin.call('add_app', { name: 'loose', input_type: 'floats', default_output: 'none', latency_slo_micros: 2_000_000, candidate_model_names: ['digits-mlp'] });
    await waitForModelAnswer(sys, 'loose', { input: Array.from(digits.pixels[0]!) });
    const good = Array.from({ length: 24 }, (_, i) => postJson(`${sys.stack.ingressUrl}/loose/predict`, { input: Array.from(digits.pixels[i]!) }));
    const bad = postJson(`${sys.stack.ingressUrl}/loose/predict`, { input: [1, 2, 3] });
    const [badRes, ...goodRes] = await Promise.all([bad, ...good]);
    expect(badRes!.body).to.include({ default: true, output: 'none' });
    expect(badRes!.body.default_explanation).to.match(/shape/);
    for (const r of goodRes) expect(r.body.default).to.equal(false);
  });

  it('query path - health reports live and ready', async () => {
    const res = await fetch(`${sys.stack.ingressUrl}/health`);
    expect(res.status).to.equal(200);
    expect(await res.json()).to.include({ live: true, ready: true });
  });
});
