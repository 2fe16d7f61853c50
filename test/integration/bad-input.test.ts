/**
 * Bad input never crashes an actor: every malformed request gets a clear, coded error, and a valid
 * query afterwards still succeeds with every process still running.
 */
import { expect } from 'chai';
import { Packr } from 'msgpackr';
import { connect, headers, type NatsConnection } from 'nats';
import { registerDemo } from '../../cli/stack.js';
import { ERROR_CODE_HEADER, ERROR_STATUS_HEADER } from '../../shared/errors.js';
import { startTestNats, stopTestNats, type TestNats } from '../helpers/nats.js';
import { postJson, startTestStack, stopTestStack, waitForModelAnswer, type TestStack, addJsModel } from '../helpers/stack.js';

const msgpack = new Packr({ useRecords: false });
const row = (n = 64): number[] => Array.from({ length: n }, (_, i) => i % 17);

interface HttpCase {
  name: string;
  path?: string;
  method?: string;
  body: string | undefined;
  contentType?: string | null;
  status: number;
  code: string;
}

const JSON_CT = 'application/json';
const httpCases: HttpCase[] = [
  { name: 'malformed JSON', body: '{"input": [1, 2', status: 400, code: 'CLIPPER_ERR_PROTO_DECODE' },
  { name: 'empty body', body: '', status: 400, code: 'CLIPPER_ERR_REQUEST_EMPTY' },
  { name: 'wrong Content-Type', body: JSON.stringify({ input: row() }), contentType: 'text/plain', status: 415, code: 'CLIPPER_ERR_REQUEST_CONTENT_TYPE' },
  { name: 'no Content-Type', body: JSON.stringify({ input: row() }), contentType: null, status: 415, code: 'CLIPPER_ERR_REQUEST_CONTENT_TYPE' },
  { name: 'input too short', body: JSON.stringify({ input: row(63) }), status: 400, code: 'CLIPPER_ERR_INPUT_SHAPE' },
  { name: 'input too long', body: JSON.stringify({ input: row(65) }), status: 400, code: 'CLIPPER_ERR_INPUT_SHAPE' },
  { name: 'strings where numbers are expected', body: JSON.stringify({ input: row().map(String) }), status: 400, code: 'CLIPPER_ERR_INPUT_TYPE' },
  { name: 'input is an object', body: JSON.stringify({ input: { a: 1 } }), status: 400, code: 'CLIPPER_ERR_INPUT_TYPE' },
  { name: 'input is null', body: JSON.stringify({ input: null }), status: 400, code: 'CLIPPER_ERR_INPUT_TYPE' },
  { name: 'Infinity (1e999)', body: `{"input": [1e999${',0'.repeat(63)}]}`, status: 400, code: 'CLIPPER_ERR_INPUT_NOT_FINITE' },
  { name: 'NaN literal', body: `{"input": [NaN${',0'.repeat(63)}]}`, status: 400, code: 'CLIPPER_ERR_PROTO_DECODE' },
  { name: 'input_batch with mixed lengths', path: '/sum/predict', body: JSON.stringify({ input_batch: [[1, 2, 3], [1, 2]] }), status: 400, code: 'CLIPPER_ERR_INPUT_BATCH_SHAPE' },
  { name: 'input_batch with a short row for a shaped app', body: JSON.stringify({ input_batch: [row(), row(10)] }), status: 400, code: 'CLIPPER_ERR_INPUT_SHAPE' },
  { name: 'empty input_batch', body: JSON.stringify({ input_batch: [] }), status: 400, code: 'CLIPPER_ERR_REQUEST_SCHEMA' },
  { name: 'both input and input_batch', body: JSON.stringify({ input: row(), input_batch: [row()] }), status: 400, code: 'CLIPPER_ERR_REQUEST_SCHEMA' },
  { name: 'neither input nor input_batch', body: JSON.stringify({ uid: 3 }), status: 400, code: 'CLIPPER_ERR_REQUEST_SCHEMA' },
  { name: 'unknown field', body: JSON.stringify({ input: row(), colour: 'red' }), status: 400, code: 'CLIPPER_ERR_REQUEST_SCHEMA' },
  { name: 'body is a JSON array', body: JSON.stringify([row()]), status: 400, code: 'CLIPPER_ERR_REQUEST_SCHEMA' },
  { name: 'unknown protocol version', body: JSON.stringify({ v: 99, input: row() }), status: 400, code: 'CLIPPER_ERR_PROTO_VERSION' },
  { name: 'unknown app', path: '/nope/predict', body: JSON.stringify({ input: row() }), status: 404, code: 'CLIPPER_ERR_APP_NOT_FOUND' },
  { name: 'unknown version', body: JSON.stringify({ input: row(), version: '42' }), status: 404, code: 'CLIPPER_ERR_VERSION_NOT_FOUND' },
  { name: 'invalid version name', body: JSON.stringify({ input: row(), version: 'a.b' }), status: 400, code: 'CLIPPER_ERR_REQUEST_SCHEMA' },
  { name: 'oversized body', body: JSON.stringify({ input: row(), pad: 'x'.repeat(2 * 1024 * 1024) }), status: 413, code: 'CLIPPER_ERR_REQUEST_TOO_LARGE' },
  { name: 'GET on predict', method: 'GET', body: undefined, status: 405, code: 'CLIPPER_ERR_METHOD_NOT_ALLOWED' },
  { name: 'unknown route', path: '/digits/predictions', body: JSON.stringify({ input: row() }), status: 404, code: 'CLIPPER_ERR_ROUTE_NOT_FOUND' },
];

describe('bad input (real processes)', function () {
  this.timeout(120_000);
  let nats: TestNats;
  let sys: TestStack;
  let nc: NatsConnection;

  before(async () => {
    nats = await startTestNats();
    sys = await startTestStack(nats);
    await registerDemo(sys.stack);
    await addJsModel(sys, 'sum', 'sum.mjs');
    await sys.admin.call('add_app', { name: 'sum', input_type: 'doubles', latency_slo_micros: 1_000_000, candidate_model_names: ['sum'] });
    await waitForModelAnswer(sys, 'sum', { input: [1] });
    nc = await connect({ servers: nats.url });
  });

  after(async () => {
    await nc?.close();
    await stopTestStack(sys);
    await stopTestNats(nats);
  });

  for (const c of httpCases) {
    it(`bad input - HTTP ${c.name} gets ${c.status} ${c.code}`, async () => {
      const h: Record<string, string> = {};
      if (c.contentType !== null) h['Content-Type'] = c.contentType ?? JSON_CT;
      const res = await fetch(`${sys.stack.ingressUrl}${c.path ?? '/digits/predict'}`, { method: c.method ?? 'POST', headers: h, body: c.body });
      const body = (await res.json()) as Record<string, unknown>;
      expect(res.status, JSON.stringify(body)).to.equal(c.status);
      expect(body.code).to.equal(c.code);
      expect(body.error).to.be.a('string').and.not.empty;
      expect(body.cause).to.be.a('string').and.not.empty;
    });
  }

  const natsCases: { name: string; subject?: string; data: Uint8Array; json?: boolean; code: string; status: number }[] = [
    { name: 'garbage msgpack', data: new Uint8Array([0xc1, 0xff, 0x00, 0x13]), code: 'CLIPPER_ERR_PROTO_DECODE', status: 400 },
    { name: 'truncated msgpack', data: msgpack.pack({ input: row() }).subarray(0, 20), code: 'CLIPPER_ERR_PROTO_DECODE', status: 400 },
    { name: 'empty payload', data: new Uint8Array(0), code: 'CLIPPER_ERR_REQUEST_EMPTY', status: 400 },
    { name: 'NaN in msgpack', data: msgpack.pack({ input: [Number.NaN, ...row(63)] }), code: 'CLIPPER_ERR_INPUT_NOT_FINITE', status: 400 },
    { name: 'Infinity in msgpack', data: msgpack.pack({ input: [Number.POSITIVE_INFINITY, ...row(63)] }), code: 'CLIPPER_ERR_INPUT_NOT_FINITE', status: 400 },
    { name: 'tensor whose bytes do not match its shape', data: msgpack.pack({ input: { dtype: 'FP32', shape: [64], data: new Uint8Array(100) } }), code: 'CLIPPER_ERR_INPUT_SHAPE', status: 400 },
    { name: 'tensor with an unknown dtype', data: msgpack.pack({ input: { dtype: 'FP16', shape: [64], data: new Uint8Array(128) } }), code: 'CLIPPER_ERR_INPUT_TYPE', status: 400 },
    { name: 'JSON header with a msgpack body', json: true, data: msgpack.pack({ input: row() }), code: 'CLIPPER_ERR_PROTO_DECODE', status: 400 },
    { name: 'unknown app', subject: 'clipper.predict.nope', data: msgpack.pack({ input: row() }), code: 'CLIPPER_ERR_APP_NOT_FOUND', status: 404 },
    { name: 'unknown protocol version', data: msgpack.pack({ v: 2, input: row() }), code: 'CLIPPER_ERR_PROTO_VERSION', status: 400 },
  ];

  for (const c of natsCases) {
    it(`bad input - NATS ${c.name} gets ${c.code} in service-error headers`, async () => {
      const h = headers();
      if (c.json) h.set('Content-Type', 'application/json');
      const msg = await nc.request(c.subject ?? 'clipper.predict.digits', c.data, { timeout: 5_000, headers: h });
      expect(msg.headers?.get(ERROR_CODE_HEADER)).to.equal(c.code);
      expect(msg.headers?.get(ERROR_STATUS_HEADER)).to.equal(String(c.status));
      const body = (c.json ? JSON.parse(new TextDecoder().decode(msg.data)) : msgpack.unpack(msg.data)) as Record<string, unknown>;
      expect(body.code).to.equal(c.code);
    });
  }

  it('bad input - after all of the above, a valid query succeeds and every process still runs', async () => {
    const res = await postJson(`${sys.stack.ingressUrl}/digits/predict`, { input: row() });
    expect(res.status).to.equal(200);
    expect(res.body.default).to.equal(false);
    const sum = await postJson(`${sys.stack.ingressUrl}/sum/predict`, { input: [1, 2, 3.5] });
    expect(sum.body.output).to.deep.equal([6.5]);
    for (const c of sys.stack.children) expect(c.running, `${c.name} is running`).to.equal(true);
  });
});
