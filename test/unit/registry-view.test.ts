import { expect } from 'chai';
import fc from 'fast-check';
import type { KV, KvEntry } from 'nats';

import type { Logger } from '../../shared/logging.js';
import { RegistryView, type AppRecord, type ModelRecord } from '../../shared/registry.js';

type Op = 'PUT' | 'DEL' | 'PURGE';

const encoder = new TextEncoder();

function entry(key: string, operation: Op, value?: unknown): KvEntry {
  const bytes = value === undefined ? new Uint8Array(0) : typeof value === 'string' ? encoder.encode(value) : encoder.encode(JSON.stringify(value));
  return { bucket: 'clipper-registry', key, value: bytes, operation, revision: 0, created: new Date(0), delta: 0, length: bytes.length } as unknown as KvEntry;
}

/**
 * A stand-in for a JetStream KV with just what RegistryView uses: `status()` (the stream's last
 * sequence) and `watch({ key })` returning an async iterable with `stop()`. Like JetStream, every
 * entry gets the next sequence number as its revision, and the watch delivers the initial entries
 * first, asynchronously, then live ones.
 */
class FakeKv {
  watchKey?: string;
  watchCalls = 0;
  stopped = false;
  private seq = 0;
  private readonly queue: KvEntry[] = [];
  private readonly initial: KvEntry[];
  private wake?: () => void;

  constructor(initial: KvEntry[] = []) {
    this.initial = initial.map((e) => this.stamp(e));
  }

  private stamp(e: KvEntry): KvEntry {
    return { ...e, revision: ++this.seq } as KvEntry;
  }

  async status(): Promise<{ streamInfo: { state: { last_seq: number } } }> {
    return { streamInfo: { state: { last_seq: this.seq } } };
  }

  async watch(opts: { key?: string }): Promise<{ stop(): void; [Symbol.asyncIterator](): AsyncIterator<KvEntry> }> {
    this.watchCalls++;
    this.watchKey = opts.key;
    this.queue.push(...this.initial);
    const iterate = async function* (self: FakeKv): AsyncGenerator<KvEntry> {
      for (;;) {
        while (self.queue.length > 0 && !self.stopped) {
          const next = self.queue.shift()!;
          // Initial entries trickle in over event-loop turns, as they do from a real server.
          if (next.revision <= self.initial.length) await new Promise((r) => setImmediate(r));
          yield next;
        }
        if (self.stopped) return;
        await new Promise<void>((resolve) => (self.wake = resolve));
      }
    };
    const it = iterate(this);
    return {
      stop: () => {
        this.stopped = true;
        this.signal();
      },
      [Symbol.asyncIterator]: () => it,
    };
  }

  put(key: string, value: unknown): void {
    this.push(entry(key, 'PUT', value));
  }

  del(key: string, op: Op = 'DEL'): void {
    this.push(entry(key, op));
  }

  push(e: KvEntry): void {
    this.queue.push(this.stamp(e));
    this.signal();
  }

  private signal(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}

/** Lets the view's watch loop consume everything queued so far. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function app(name: string): AppRecord {
  return { name, input_type: 'doubles', default_output: '-1', latency_slo_micros: 100_000, policy: 'single', created_unix_ms: 1 };
}

function model(name: string, version: string, replicas = 1): ModelRecord {
  return { name, version, input_type: 'doubles', wrapper: 'onnx', model_data_path: `/m/${name}-${version}.onnx`, batch_size: -1, num_replicas: replicas, created_unix_ms: 1 };
}

async function started(initial: KvEntry[] = [], log?: Logger): Promise<{ kv: FakeKv; view: RegistryView }> {
  const kv = new FakeKv(initial);
  const view = new RegistryView(log);
  await view.start(kv as unknown as KV);
  return { kv, view };
}

describe('registry view', () => {
  it('registry view - watches every key and has the initial values when start resolves', async () => {
    const { kv, view } = await started([
      entry('apps.digits', 'PUT', app('digits')),
      entry('models.mlp.1', 'PUT', model('mlp', '1')),
      entry('current.mlp', 'PUT', { version: '1' }),
      entry('links.digits', 'PUT', { models: ['mlp'] }),
    ]);
    expect(kv.watchCalls).to.equal(1);
    expect(kv.watchKey).to.equal('>');
    expect(view.apps.get('digits')).to.deep.equal(app('digits'));
    expect(view.model('mlp', '1')).to.deep.equal(model('mlp', '1'));
    expect(view.current.get('mlp')).to.equal('1');
    expect(view.links.get('digits')).to.deep.equal(['mlp']);
    view.stop();
  });

  it('registry view - start resolves only once the entry with the bucket\'s last sequence is applied', async () => {
    const initial = Array.from({ length: 50 }, (_, i) => entry(`apps.a${i}`, 'PUT', app(`a${i}`)));
    const view = new RegistryView();
    await view.start(new FakeKv(initial) as unknown as KV);
    expect(view.apps.size).to.equal(50);
    view.stop();
  });

  it('registry view - an empty registry starts empty', async () => {
    const { view } = await started();
    expect(view.apps.size).to.equal(0);
    expect(view.models.size).to.equal(0);
    expect(view.current.size).to.equal(0);
    expect(view.links.size).to.equal(0);
    expect(view.deployed()).to.deep.equal([]);
    view.stop();
  });

  it('registry view - apps are added, replaced and deleted', async () => {
    const { kv, view } = await started();
    kv.put('apps.a', app('a'));
    kv.put('apps.b', app('b'));
    await settle();
    expect([...view.apps.keys()].sort()).to.deep.equal(['a', 'b']);
    kv.put('apps.a', { ...app('a'), default_output: 'changed' });
    await settle();
    expect(view.apps.get('a')!.default_output).to.equal('changed');
    kv.del('apps.a');
    await settle();
    expect([...view.apps.keys()]).to.deep.equal(['b']);
    view.stop();
  });

  it('registry view - model versions are kept per model; deleting the last version forgets the model', async () => {
    const { kv, view } = await started();
    kv.put('models.mlp.1', model('mlp', '1'));
    kv.put('models.mlp.2', model('mlp', '2', 3));
    kv.put('models.cnn.1', model('cnn', '1'));
    await settle();
    expect([...view.models.get('mlp')!.keys()].sort()).to.deep.equal(['1', '2']);
    expect(view.model('mlp', '2')!.num_replicas).to.equal(3);
    kv.del('models.mlp.1');
    await settle();
    expect(view.model('mlp', '1')).to.equal(undefined);
    expect(view.model('mlp', '2')).to.not.equal(undefined);
    kv.del('models.mlp.2');
    await settle();
    expect(view.models.has('mlp')).to.equal(false);
    expect(view.models.has('cnn')).to.equal(true);
    kv.del('models.ghost.1');
    await settle();
    expect(view.models.has('ghost')).to.equal(false);
    view.stop();
  });

  it('registry view - current versions and links follow PUT and DEL', async () => {
    const { kv, view } = await started();
    kv.put('current.mlp', { version: '1' });
    kv.put('links.digits', { models: ['mlp', 'cnn'] });
    await settle();
    expect(view.current.get('mlp')).to.equal('1');
    expect(view.links.get('digits')).to.deep.equal(['mlp', 'cnn']);
    kv.put('current.mlp', { version: '2' });
    kv.put('links.digits', { models: ['cnn'] });
    await settle();
    expect(view.current.get('mlp')).to.equal('2');
    expect(view.links.get('digits')).to.deep.equal(['cnn']);
    kv.del('current.mlp');
    kv.del('links.digits');
    await settle();
    expect(view.current.has('mlp')).to.equal(false);
    expect(view.links.has('digits')).to.equal(false);
    view.stop();
  });

  it('registry view - a PURGE is a delete', async () => {
    const { kv, view } = await started([entry('apps.a', 'PUT', app('a')), entry('links.a', 'PUT', { models: ['m'] })]);
    kv.del('apps.a', 'PURGE');
    kv.del('links.a', 'PURGE');
    await settle();
    expect(view.apps.has('a')).to.equal(false);
    expect(view.links.has('a')).to.equal(false);
    view.stop();
  });

  it('registry view - unknown keys are ignored', async () => {
    const { kv, view } = await started();
    kv.put('other.x', { a: 1 });
    kv.put('apps', app('nameless'));
    kv.put('models.onlyname', model('onlyname', '1'));
    await settle();
    expect(view.apps.size).to.equal(0);
    expect(view.models.size).to.equal(0);
    view.stop();
  });

  it('registry view - an entry that is not JSON is logged and skipped; later entries still apply', async () => {
    const warnings: unknown[] = [];
    const log = { warn: (obj: unknown) => warnings.push(obj) } as unknown as Logger;
    const { kv, view } = await started([], log);
    kv.put('apps.bad', '{not json');
    kv.put('apps.good', app('good'));
    await settle();
    expect(view.apps.has('bad')).to.equal(false);
    expect(view.apps.has('good')).to.equal(true);
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.have.property('key', 'apps.bad');
    view.stop();
  });

  it('registry view - resolveVersion uses the requested version if it exists, else the current one', async () => {
    const { view } = await started([
      entry('models.mlp.1', 'PUT', model('mlp', '1')),
      entry('models.mlp.2', 'PUT', model('mlp', '2')),
      entry('current.mlp', 'PUT', { version: '2' }),
      entry('models.orphan.1', 'PUT', model('orphan', '1')),
    ]);
    expect(view.resolveVersion('mlp')).to.equal('2');
    expect(view.resolveVersion('mlp', '1')).to.equal('1');
    expect(view.resolveVersion('mlp', '2')).to.equal('2');
    expect(view.resolveVersion('mlp', '3')).to.equal(undefined);
    expect(view.resolveVersion('orphan')).to.equal(undefined);
    expect(view.resolveVersion('orphan', '1')).to.equal('1');
    expect(view.resolveVersion('nope')).to.equal(undefined);
    expect(view.resolveVersion('nope', '1')).to.equal(undefined);
    view.stop();
  });

  it('registry view - deployed lists the current version of each model that has a record', async () => {
    const { kv, view } = await started([
      entry('models.mlp.1', 'PUT', model('mlp', '1')),
      entry('models.mlp.2', 'PUT', model('mlp', '2')),
      entry('models.cnn.7', 'PUT', model('cnn', '7')),
      entry('current.mlp', 'PUT', { version: '2' }),
      entry('current.cnn', 'PUT', { version: '7' }),
      entry('current.ghost', 'PUT', { version: '1' }),
    ]);
    const ids = (): string[] => view.deployed().map((m) => `${m.name}:${m.version}`).sort();
    expect(ids()).to.deep.equal(['cnn:7', 'mlp:2']);
    kv.put('current.mlp', { version: '1' });
    kv.del('current.cnn');
    await settle();
    expect(ids()).to.deep.equal(['mlp:1']);
    kv.del('models.mlp.1');
    await settle();
    expect(ids()).to.deep.equal([]);
    view.stop();
  });

  it('registry view - onChange listeners run after each change has been applied, until removed', async () => {
    const { kv, view } = await started();
    const seen: number[] = [];
    const other: number[] = [];
    const off = view.onChange(() => seen.push(view.apps.size));
    view.onChange(() => other.push(view.apps.size));
    kv.put('apps.a', app('a'));
    kv.put('apps.b', app('b'));
    await settle();
    expect(seen).to.deep.equal([1, 2]);
    off();
    kv.del('apps.a');
    await settle();
    expect(seen).to.deep.equal([1, 2]);
    expect(other).to.deep.equal([1, 2, 1]);
    view.stop();
  });

  it('registry view - listeners also run for entries that were skipped', async () => {
    const { kv, view } = await started([], { warn: () => undefined } as unknown as Logger);
    let calls = 0;
    view.onChange(() => calls++);
    kv.put('apps.bad', 'not json');
    kv.put('unknown.key', 1);
    await settle();
    expect(calls).to.equal(2);
    view.stop();
  });

  it('registry view - stop ends the watch; later entries are not applied', async () => {
    const { kv, view } = await started();
    view.stop();
    expect(kv.stopped).to.equal(true);
    kv.put('apps.late', app('late'));
    await settle();
    expect(view.apps.has('late')).to.equal(false);
  });

  it('registry view - stop before start is harmless', () => {
    new RegistryView().stop();
  });

  it('registry view - after any sequence of puts and deletes the view equals the last value of each key', async () => {
    const keys = ['apps.a', 'apps.b', 'current.m', 'links.a', 'models.m.1', 'models.m.2'];
    const valueFor = (key: string, n: number): unknown => {
      const [kind, a, b] = key.split('.');
      if (kind === 'apps') return { ...app(a!), latency_slo_micros: n };
      if (kind === 'current') return { version: String(n) };
      if (kind === 'links') return { models: [`m${n}`] };
      return model(a!, b!, n);
    };
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom(...keys), fc.boolean(), fc.nat({ max: 9 })), { maxLength: 30 }), async (ops) => {
        const { kv, view } = await started();
        const expected = new Map<string, unknown>();
        for (const [key, isPut, n] of ops) {
          if (isPut) {
            kv.put(key, valueFor(key, n));
            expected.set(key, valueFor(key, n));
          } else {
            kv.del(key);
            expected.delete(key);
          }
        }
        await settle();
        const actual = new Map<string, unknown>();
        for (const [k, v] of view.apps) actual.set(`apps.${k}`, v);
        for (const [k, v] of view.current) actual.set(`current.${k}`, { version: v });
        for (const [k, v] of view.links) actual.set(`links.${k}`, { models: v });
        for (const [m, versions] of view.models) for (const [ver, rec] of versions) actual.set(`models.${m}.${ver}`, rec);
        expect(new Map([...actual].sort())).to.deep.equal(new Map([...expected].sort()));
        view.stop();
      }),
      { numRuns: 50 },
    );
  });
});
