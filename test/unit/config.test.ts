import { expect } from 'chai';
import fc from 'fast-check';

import { desiredProcesses } from '../../services/agent/desired.js';
import { policyConfigSchema, type PolicyConfig } from '../../services/policy/types.js';
import { ClipperError } from '../../shared/errors.js';
import { commonConfigProperties, commonFromEnv, loadConfig, type CommonConfig } from '../../shared/config.js';
import type { ModelRecord } from '../../shared/registry.js';

interface TestConfig extends CommonConfig {
  port: number;
  ratio: number;
  enabled: boolean;
  name: string;
  token?: string;
  shards: number[];
}

const schema = {
  type: 'object',
  properties: {
    ...commonConfigProperties,
    port: { type: 'integer', minimum: 1, maximum: 65535, default: 8080 },
    ratio: { type: 'number', default: 0.5 },
    enabled: { type: 'boolean', default: false },
    name: { type: 'string', default: 'test' },
    token: { type: 'string' },
    shards: { type: 'array', items: { type: 'integer', minimum: 0 }, default: [] },
  },
  additionalProperties: false,
} as const;

function configError(raw: Record<string, unknown>): ClipperError {
  try {
    loadConfig<TestConfig>(schema, raw);
  } catch (err) {
    expect(err).to.be.instanceOf(ClipperError);
    expect((err as ClipperError).code).to.equal('CLIPPER_ERR_CONFIG_INVALID');
    return err as ClipperError;
  }
  throw new Error(`expected ${JSON.stringify(raw)} to be refused`);
}

describe('config', () => {
  it('config - applies every default to an empty input', () => {
    const c = loadConfig<TestConfig>(schema, {});
    expect(c).to.deep.equal({
      natsUrl: 'nats://127.0.0.1:4222',
      prefix: 'clipper',
      logLevel: 'info',
      port: 8080,
      ratio: 0.5,
      enabled: false,
      name: 'test',
      shards: [],
    });
    expect(c).to.not.have.property('token');
  });

  it('config - keeps given values over defaults', () => {
    const c = loadConfig<TestConfig>(schema, { natsUrl: 'nats://a:1,nats://b:2', prefix: 't.run_1', logLevel: 'debug', port: 9000, token: 's3cret' });
    expect(c.natsUrl).to.equal('nats://a:1,nats://b:2');
    expect(c.prefix).to.equal('t.run_1');
    expect(c.logLevel).to.equal('debug');
    expect(c.port).to.equal(9000);
    expect(c.token).to.equal('s3cret');
  });

  it('config - coerces strings from environment-like input', () => {
    const c = loadConfig<TestConfig>(schema, { port: '1234', ratio: '0.25', enabled: 'true' });
    expect(c.port).to.equal(1234);
    expect(c.ratio).to.equal(0.25);
    expect(c.enabled).to.equal(true);
    expect(loadConfig<TestConfig>(schema, { enabled: 'false' }).enabled).to.equal(false);
  });

  it('config - treats undefined values as absent, so defaults apply', () => {
    const c = loadConfig<TestConfig>(schema, { port: undefined, ...commonFromEnv({}) });
    expect(c.port).to.equal(8080);
    expect(c.prefix).to.equal('clipper');
    expect(Object.keys(c)).to.not.include('token');
  });

  it('config - refuses unknown keys with CLIPPER_ERR_CONFIG_INVALID naming each key', () => {
    const e = configError({ prot: 8080 });
    expect(e.message).to.match(/\(prot\)/);
    expect(e.status).to.equal(500);
    const two = configError({ alpha: 1, beta: 2 });
    expect(two.message).to.match(/\(alpha\)/);
    expect(two.message).to.match(/\(beta\)/);
  });

  it('config - refuses values that do not match the schema, naming the field', () => {
    expect(configError({ port: 'eighty' }).message).to.match(/\/port must be integer/);
    expect(configError({ port: 0 }).message).to.match(/\/port must be >= 1/);
    expect(configError({ port: '1.5' }).message).to.match(/\/port/);
    expect(configError({ prefix: 'a..b' }).message).to.match(/\/prefix must match pattern/);
    expect(configError({ prefix: 'has space' }).message).to.match(/\/prefix/);
    expect(configError({ logLevel: 'loud' }).message).to.match(/\/logLevel must be equal to one of the allowed values/);
    expect(configError({ enabled: 'maybe' }).message).to.match(/\/enabled must be boolean/);
  });

  it('config - reports every problem at once', () => {
    const e = configError({ port: 'x', logLevel: 'loud', nope: 1 });
    expect(e.message).to.match(/\/port/);
    expect(e.message).to.match(/\/logLevel/);
    expect(e.message).to.match(/\(nope\)/);
  });

  it('config - returns a frozen object', () => {
    const c = loadConfig<TestConfig>(schema, {});
    expect(Object.isFrozen(c)).to.equal(true);
    expect(() => {
      (c as { port: number }).port = 1;
    }).to.throw(TypeError);
  });

  it('config - does not add defaults to the caller\'s object', () => {
    const raw: Record<string, unknown> = { port: '99' };
    loadConfig<TestConfig>(schema, raw);
    expect(raw).to.deep.equal({ port: '99' });
  });

  it('config - default arrays are not shared between loads', () => {
    const a = loadConfig<TestConfig>(schema, {});
    const b = loadConfig<TestConfig>(schema, {});
    expect(a.shards).to.not.equal(b.shards);
  });

  it('config - any port in range, given as a string, loads as that integer', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 65535 }), (port) => {
        expect(loadConfig<TestConfig>(schema, { port: String(port) }).port).to.equal(port);
      }),
    );
  });

  it('config - loads an actor schema (the policy\'s) with its defaults', () => {
    const c = loadConfig<PolicyConfig>(policyConfigSchema, { shards: '4' });
    expect(c.shards).to.equal(4);
    expect(c.ownedShards).to.deep.equal([]);
    expect(c.prefix).to.equal('clipper');
    expect(() => loadConfig<PolicyConfig>(policyConfigSchema, { shards: 0 })).to.throw(ClipperError, /shards/);
  });

  it('config - commonFromEnv reads NATS_URL, CLIPPER_PREFIX and LOG_LEVEL', () => {
    expect(commonFromEnv({ NATS_URL: 'nats://x:4222', CLIPPER_PREFIX: 'p', LOG_LEVEL: 'warn', OTHER: 'y' })).to.deep.equal({
      natsUrl: 'nats://x:4222',
      prefix: 'p',
      logLevel: 'warn',
    });
    expect(commonFromEnv({})).to.deep.equal({ natsUrl: undefined, prefix: undefined, logLevel: undefined });
  });
});

function model(name: string, version: string, replicas: number): ModelRecord {
  return {
    name,
    version,
    input_type: 'doubles',
    wrapper: 'onnx',
    model_data_path: `/models/${name}.onnx`,
    batch_size: -1,
    num_replicas: replicas,
    created_unix_ms: 0,
  };
}

describe('desired processes', () => {
  it('desired processes - nothing deployed means nothing to run', () => {
    expect(desiredProcesses([])).to.deep.equal([]);
  });

  it('desired processes - one scheduler and num_replicas workers per model version', () => {
    expect(desiredProcesses([model('mlp', '1', 2)])).to.deep.equal([
      { key: 'scheduler.mlp.1', actor: 'scheduler', args: ['--model', 'mlp', '--version', '1'] },
      { key: 'worker.mlp.1.0', actor: 'worker', args: ['--model', 'mlp', '--version', '1', '--replica', '0'] },
      { key: 'worker.mlp.1.1', actor: 'worker', args: ['--model', 'mlp', '--version', '1', '--replica', '1'] },
    ]);
  });

  it('desired processes - a model with zero replicas still gets its scheduler', () => {
    expect(desiredProcesses([model('m', 'v', 0)])).to.deep.equal([
      { key: 'scheduler.m.v', actor: 'scheduler', args: ['--model', 'm', '--version', 'v'] },
    ]);
  });

  it('desired processes - several models each get their own processes', () => {
    const keys = desiredProcesses([model('a', '1', 1), model('b', '7', 3)]).map((p) => p.key);
    expect(keys).to.deep.equal(['scheduler.a.1', 'worker.a.1.0', 'scheduler.b.7', 'worker.b.7.0', 'worker.b.7.1', 'worker.b.7.2']);
  });

  it('desired processes - keys are unique and the counts add up for any deployment', () => {
    const rec = fc.record({ name: fc.constantFrom('a', 'b', 'c', 'd'), version: fc.constantFrom('1', '2'), replicas: fc.integer({ min: 0, max: 5 }) });
    fc.assert(
      fc.property(fc.uniqueArray(rec, { selector: (r) => `${r.name}.${r.version}`, maxLength: 6 }), (recs) => {
        const procs = desiredProcesses(recs.map((r) => model(r.name, r.version, r.replicas)));
        expect(procs).to.have.length(recs.reduce((n, r) => n + 1 + r.replicas, 0));
        expect(new Set(procs.map((p) => p.key)).size).to.equal(procs.length);
        for (const p of procs) {
          const [actor, name, version, replica] = p.key.split('.');
          expect(p.actor).to.equal(actor);
          expect(p.args.slice(0, 4)).to.deep.equal(['--model', name, '--version', version]);
          if (p.actor === 'worker') expect(p.args.slice(4)).to.deep.equal(['--replica', replica]);
          else expect(p.args).to.have.length(4);
        }
      }),
    );
  });
});
