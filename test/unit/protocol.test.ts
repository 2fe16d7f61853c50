import { expect } from 'chai';
import fc from 'fast-check';

import { ClipperError } from '../../shared/errors.js';
import { defineMessage, endpoints, heartbeatMessage, PROTOCOL_VERSION, type MessageType } from '../../shared/protocol.js';
import { Subjects } from '../../shared/subjects.js';
import { fromNumbers, fromStrings } from '../../shared/tensor.js';

function parseError(type: MessageType<unknown>, value: unknown): ClipperError {
  try {
    type.parse(value);
  } catch (err) {
    expect(err).to.be.instanceOf(ClipperError);
    return err as ClipperError;
  }
  throw new Error(`expected ${JSON.stringify(value)} to be refused`);
}

function expectSchemaError(type: MessageType<unknown>, value: unknown, pattern?: RegExp): void {
  const e = parseError(type, value);
  expect(e.code, e.message).to.equal('CLIPPER_ERR_REQUEST_SCHEMA');
  expect(e.status).to.equal(400);
  if (pattern) expect(e.message).to.match(pattern);
}

function expectVersionError(type: MessageType<unknown>, value: unknown): void {
  const e = parseError(type, value);
  expect(e.code, e.message).to.equal('CLIPPER_ERR_PROTO_VERSION');
  expect(e.message).to.match(/v=1/);
}

const v = PROTOCOL_VERSION;
const tensor = { dtype: 'FP32', shape: [2], data: new Uint8Array(8) };

describe('protocol', () => {
  const ep = endpoints(new Subjects());

  it('protocol - speaks version 1', () => {
    expect(PROTOCOL_VERSION).to.equal(1);
  });

  describe('defineMessage', () => {
    const point = defineMessage<{ v?: number; x: number }>({
      type: 'object',
      required: ['x'],
      properties: { v: { type: 'integer' }, x: { type: 'number' } },
      additionalProperties: false,
    });

    it('protocol - defineMessage parse returns a valid message as it is', () => {
      const m = { v: 1, x: 2 };
      expect(point.parse(m)).to.equal(m);
      expect(point.parse({ x: 3 })).to.deep.equal({ x: 3 });
      expect(point.schema).to.have.property('type', 'object');
    });

    it('protocol - defineMessage parse refuses any other v with CLIPPER_ERR_PROTO_VERSION', () => {
      for (const bad of [0, 2, -1, 1.5, '1', null, true, [1]]) expectVersionError(point, { v: bad, x: 1 });
      fc.assert(fc.property(fc.integer().filter((n) => n !== 1), (n) => expectVersionError(point, { v: n, x: 1 })));
    });

    it('protocol - the version check comes before the schema check', () => {
      expectVersionError(point, { v: 2, y: 'not even valid' });
    });

    it('protocol - defineMessage parse refuses schema violations with CLIPPER_ERR_REQUEST_SCHEMA', () => {
      expectSchemaError(point, {}, /required property 'x'/);
      expectSchemaError(point, { x: 'one' }, /^request does not match its schema: \/x must be number/);
      expectSchemaError(point, { x: 1, y: 2 }, /additional properties/);
      for (const notObject of [null, 'x', 3, [], [{ x: 1 }]]) expectSchemaError(point, notObject, /body must be object/);
    });
  });

  describe('predict', () => {
    const req = ep.predict.request;

    it('protocol - predict is addressed to <prefix>.predict.<app>', () => {
      expect(ep.predict.name).to.equal('predict');
      expect(ep.predict.subject('digits')).to.equal('clipper.predict.digits');
      expect(endpoints(new Subjects('t1')).predict.subject('digits')).to.equal('t1.predict.digits');
    });

    it('protocol - a predict request has input or input_batch', () => {
      req.parse({ input: [1, 2, 3] });
      req.parse({ v, input: 'a string' });
      req.parse({ input: { dtype: 'FP32', shape: [1], data: [1] } });
      req.parse({ input: null });
      req.parse({ input_batch: [[1], [2]] });
      req.parse({ v, input_batch: [[1]], version: 'v2', uid: 'user-1' });
      req.parse({ input: [1], uid: 42 });
    });

    it('protocol - a predict request with both input and input_batch, or neither, is refused', () => {
      expectSchemaError(req, { input: [1], input_batch: [[1]] }, /oneOf/);
      expectSchemaError(req, {}, /oneOf|required/);
      expectSchemaError(req, { v, uid: 'x' });
    });

    it('protocol - a predict request checks input_batch size, version name, uid and unknown keys', () => {
      expectSchemaError(req, { input_batch: [] }, /input_batch/);
      expectSchemaError(req, { input_batch: Array.from({ length: 1025 }, () => [1]) }, /input_batch/);
      req.parse({ input_batch: Array.from({ length: 1024 }, () => [1]) });
      expectSchemaError(req, { input_batch: 'not an array' }, /input_batch/);
      expectSchemaError(req, { input: [1], version: 'a.b' }, /version/);
      expectSchemaError(req, { input: [1], version: 3 }, /version/);
      expectSchemaError(req, { input: [1], uid: 1.5 });
      expectSchemaError(req, { input: [1], uid: 'u'.repeat(257) });
      req.parse({ input: [1], uid: 'u'.repeat(256) });
      expectSchemaError(req, { input: [1], app: 'x' }, /additional properties/);
    });

    it('protocol - a predict request with an unknown v is refused with CLIPPER_ERR_PROTO_VERSION', () => {
      expectVersionError(req, { v: 2, input: [1] });
      expectVersionError(req, { v: 0, input: [1] });
    });

    it('protocol - a predict response needs v', () => {
      ep.predict.response.parse({ v, query_id: 'q', output: 1, default: false });
      ep.predict.response.parse({ v, batch_predictions: [] });
      expectSchemaError(ep.predict.response, { query_id: 'q' }, /required property 'v'/);
    });
  });

  describe('policy', () => {
    const query = { v, query_id: 'q1', app: 'digits', uid: '0', input: tensor, deadline_unix_ms: 1_760_000_000_000 };

    it('protocol - policy is addressed to <prefix>.policy.<app>.<shard>', () => {
      expect(ep.policy.name).to.equal('policy');
      expect(ep.policy.subject('digits', 3)).to.equal('clipper.policy.digits.3');
    });

    it('protocol - a policy query with a tensor input is accepted, with or without version', () => {
      ep.policy.request.parse(query);
      ep.policy.request.parse({ ...query, version: '2' });
      ep.policy.request.parse({ ...query, input: fromStrings(['a', 'b']) });
      ep.policy.request.parse({ ...query, input: fromNumbers('FP64', [1, 2, 3, 4], [2, 2]) });
    });

    it('protocol - a policy query without any required field is refused', () => {
      for (const key of ['v', 'query_id', 'app', 'uid', 'input', 'deadline_unix_ms']) {
        const { [key]: _drop, ...rest } = query as Record<string, unknown>;
        void _drop;
        expectSchemaError(ep.policy.request, rest, new RegExp(key));
      }
    });

    it('protocol - a policy query checks names, uid type and the tensor map', () => {
      expectSchemaError(ep.policy.request, { ...query, app: 'bad app' }, /\/app/);
      expectSchemaError(ep.policy.request, { ...query, version: 'bad.version' }, /\/version/);
      expectSchemaError(ep.policy.request, { ...query, uid: 7 }, /\/uid/);
      expectSchemaError(ep.policy.request, { ...query, deadline_unix_ms: '1' }, /deadline_unix_ms/);
      for (const bad of [Infinity, -Infinity, NaN]) expectSchemaError(ep.policy.request, { ...query, deadline_unix_ms: bad }, /deadline_unix_ms/);
      expectSchemaError(ep.policy.request, { ...query, input: { ...tensor, dtype: 'FP16' } }, /\/input\/dtype/);
      expectSchemaError(ep.policy.request, { ...query, input: { ...tensor, shape: [-1] } }, /\/input\/shape/);
      expectSchemaError(ep.policy.request, { ...query, input: { ...tensor, shape: [1.5] } }, /\/input\/shape/);
      expectSchemaError(ep.policy.request, { ...query, input: { ...tensor, shape: [1, 1, 1, 1, 1, 1, 1, 1, 1] } }, /\/input\/shape/);
      expectSchemaError(ep.policy.request, { ...query, input: { dtype: 'FP32', shape: [2] } }, /\/input/);
      expectSchemaError(ep.policy.request, { ...query, input: { ...tensor, extra: 1 } }, /\/input/);
      expectSchemaError(ep.policy.request, { ...query, extra: true }, /additional properties/);
    });

    it('protocol - a policy answer carries a tensor or a default string', () => {
      ep.policy.response.parse({ v, query_id: 'q1', output: tensor, default: false, models: ['m:1'] });
      ep.policy.response.parse({ v, query_id: 'q1', output: 'fallback', default: true, default_explanation: 'slow' });
      expectSchemaError(ep.policy.response, { v, query_id: 'q1', output: 3, default: false });
      expectSchemaError(ep.policy.response, { v, query_id: 'q1', output: 'x', default: 'no' }, /\/default/);
      expectSchemaError(ep.policy.response, { v, query_id: 'q1', output: 'x', default: true, models: [1] }, /\/models/);
      expectSchemaError(ep.policy.response, { v, query_id: 'q1', output: 'x' }, /default/);
      expectVersionError(ep.policy.response, { v: 2, query_id: 'q1', output: 'x', default: true });
    });
  });

  describe('batch', () => {
    const task = { v, query_id: 'q1', deadline_unix_ms: 5, input: tensor };

    it('protocol - batch is addressed to <prefix>.batch.<model>.<version>', () => {
      expect(ep.batch.name).to.equal('batch');
      expect(ep.batch.subject('mlp', '1')).to.equal('clipper.batch.mlp.1');
    });

    it('protocol - a task and its result are checked', () => {
      ep.batch.request.parse(task);
      expectSchemaError(ep.batch.request, { ...task, deadline_unix_ms: Infinity }, /deadline_unix_ms/);
      expectSchemaError(ep.batch.request, { ...task, input: undefined }, /input/);
      expectSchemaError(ep.batch.request, { ...task, app: 'x' }, /additional properties/);
      ep.batch.response.parse({ v, output: tensor });
      expectSchemaError(ep.batch.response, { v }, /output/);
      expectSchemaError(ep.batch.response, { v, output: 'text' }, /\/output/);
      expectVersionError(ep.batch.request, { ...task, v: 9 });
    });
  });

  describe('worker', () => {
    const batch = { v, batch_id: 'mlp-1', deadline_unix_ms: 5, inputs: [tensor, tensor] };

    it('protocol - worker is addressed to <prefix>.worker.<model>.<version>.<replica>', () => {
      expect(ep.worker.name).to.equal('worker');
      expect(ep.worker.subject('mlp', '1', '0')).to.equal('clipper.worker.mlp.1.0');
    });

    it('protocol - a worker batch may omit reply_to', () => {
      expect(ep.worker.request.parse(batch)).to.equal(batch);
      ep.worker.request.parse({ ...batch, reply_to: ['_INBOX.a', '_INBOX.b'] });
    });

    it('protocol - a worker batch needs at least one well-formed input', () => {
      expectSchemaError(ep.worker.request, { ...batch, inputs: [] }, /\/inputs/);
      expectSchemaError(ep.worker.request, { ...batch, inputs: [{ ...tensor, dtype: 'nope' }] }, /\/inputs\/0\/dtype/);
      expectSchemaError(ep.worker.request, { ...batch, reply_to: [1] }, /\/reply_to\/0/);
      expectSchemaError(ep.worker.request, { ...batch, batch_id: 3 }, /\/batch_id/);
    });

    it('protocol - a worker result may omit outputs but needs compute_us', () => {
      ep.worker.response.parse({ v, compute_us: 12.5 });
      ep.worker.response.parse({ v, compute_us: 1, outputs: [tensor] });
      expectSchemaError(ep.worker.response, { v, outputs: [tensor] }, /compute_us/);
      expectSchemaError(ep.worker.response, { v, compute_us: 1, outputs: ['x'] }, /\/outputs\/0/);
      expectSchemaError(ep.worker.response, { v, compute_us: 1, extra: 1 }, /additional properties/);
    });
  });

  describe('heartbeat', () => {
    const hb = { v, actor: 'worker', id: 'mlp.1.0', state: 'ready', ts_unix_ms: 1, model: 'mlp', version: '1', replica: '0', subject: 'clipper.worker.mlp.1.0', capacity: 1 };

    it('protocol - a heartbeat is accepted with or without the worker fields', () => {
      expect(heartbeatMessage.parse(hb)).to.equal(hb);
      heartbeatMessage.parse({ v, actor: 'ingress', id: 'h', state: 'loading', ts_unix_ms: 0 });
      heartbeatMessage.parse({ v, actor: 'ingress', id: 'h', state: 'stopping', ts_unix_ms: 0 });
      const withProfile = { ...hb, profile: [{ size: 1, compute_us: 1100 }, { size: 2, compute_us: 1150.5 }] };
      expect(heartbeatMessage.parse(withProfile)).to.equal(withProfile);
    });

    it('protocol - a heartbeat with a field this version does not know is still a heartbeat (rolling upgrades)', () => {
      const newer = { ...hb, load: 3 };
      expect(heartbeatMessage.parse(newer)).to.deep.include(hb);
    });

    it('protocol - a heartbeat checks state, capacity, profile and required fields', () => {
      expectSchemaError(heartbeatMessage, { ...hb, state: 'busy' }, /\/state/);
      expectSchemaError(heartbeatMessage, { ...hb, capacity: 0 }, /\/capacity/);
      expectSchemaError(heartbeatMessage, { ...hb, capacity: 1.5 }, /\/capacity/);
      expectSchemaError(heartbeatMessage, { ...hb, profile: [{ size: 0, compute_us: 1 }] }, /\/profile\/0\/size/);
      expectSchemaError(heartbeatMessage, { ...hb, profile: [{ size: 1, compute_us: -1 }] }, /\/profile\/0\/compute_us/);
      expectSchemaError(heartbeatMessage, { ...hb, profile: [{ size: 1 }] }, /compute_us/);
      expectSchemaError(heartbeatMessage, { ...hb, profile: Array.from({ length: 33 }, (_, i) => ({ size: i + 1, compute_us: 1 })) }, /\/profile/);
      for (const key of ['v', 'actor', 'id', 'state', 'ts_unix_ms']) {
        const { [key]: _drop, ...rest } = hb as Record<string, unknown>;
        void _drop;
        expectSchemaError(heartbeatMessage, rest, new RegExp(key));
      }
      expectVersionError(heartbeatMessage, { ...hb, v: 2 });
    });
  });
});
