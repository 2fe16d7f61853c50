#!/usr/bin/env node
/** The `clipper` command line: start everything, send predictions, and manage the registry. */
import fs from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { connect, createInbox, type NatsConnection } from 'nats';
import { decode, encode } from '../shared/codec.js';
import { ClipperError } from '../shared/errors.js';
import { countMessages } from '../shared/feedback-stream.js';
import { errorFromReply } from '../shared/nats.js';
import { policyControlReplyMessage, PROTOCOL_VERSION, replayProgressMessage, type PolicyControlReply, type PolicyControlRequest, type ReplayProgress } from '../shared/protocol.js';
import { Subjects } from '../shared/subjects.js';
import { toJsonValue, type Tensor } from '../shared/tensor.js';
import { NATS_INSTALL_HINT } from '../shared/nats-server.js';
import { PROJECT_ROOT } from '../shared/process.js';
import type { StatusSnapshot } from '../services/ingress/mod.js';
import { AdminClient } from './admin-client.js';
import { registerDemo, Stack } from './stack.js';
import { formatStatus, formatTable } from './status-table.js';

const out = (line: string): void => void process.stdout.write(`${line}\n`);
const err = (line: string): void => void process.stderr.write(`${line}\n`);

function int(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('not an integer');
  return n;
}

function json(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('not valid JSON');
  }
}

const program = new Command()
  .name('clipper')
  .description('Low-latency prediction serving on NATS')
  .option('--admin <url>', 'admin API URL', process.env.CLIPPER_ADMIN_URL ?? 'http://127.0.0.1:1338')
  .option('--token <token>', 'admin API token', process.env.CLIPPER_ADMIN_TOKEN);

const admin = (): AdminClient => {
  const o = program.opts<{ admin: string; token?: string }>();
  return new AdminClient(o.admin, o.token);
};
const print = (v: unknown): void => out(JSON.stringify(v, null, 2));

program
  .command('up')
  .description('start NATS (embedded when none is reachable), the agent and every actor')
  .option('--demo', 'register the digits demo app and wait until it answers')
  .option('--nats-url <url>', 'NATS server to use', process.env.NATS_URL)
  .option('--embedded', 'always start an embedded nats-server')
  .option('--data-dir <dir>', 'data folder (NATS store, logs)', path.join(PROJECT_ROOT, 'data'))
  .option('--http-port <port>', 'query API port', int, Number(process.env.CLIPPER_HTTP_PORT ?? 1337))
  .option('--admin-port <port>', 'admin API port', int, Number(process.env.CLIPPER_ADMIN_PORT ?? 1338))
  .option('--prefix <prefix>', 'subject prefix', process.env.CLIPPER_PREFIX ?? 'clipper')
  .option('--log-level <level>', 'log level of the actors', process.env.LOG_LEVEL ?? 'info')
  .action(async (o: { demo?: boolean; natsUrl?: string; embedded?: boolean; dataDir: string; httpPort: number; adminPort: number; prefix: string; logLevel: string }) => {
    let stack: Stack;
    try {
      stack = await Stack.start({ ...o, dataDir: path.resolve(o.dataDir), onProgress: (l) => out(`clipper: ${l}`) });
    } catch (e) {
      const message = (e as Error).message;
      err(`clipper up: ${message}`);
      if (message === NATS_INSTALL_HINT) err('(`npm start` needs nats-server or a reachable NATS with JetStream.)');
      process.exit(1);
    }
    let stopping = false;
    const shutdown = async (signal: string): Promise<void> => {
      if (stopping) return;
      stopping = true;
      out(`clipper: ${signal}, stopping every process…`);
      await stack.stop();
      out('clipper: stopped');
      process.exit(0);
    };
    process.on('SIGINT', () => void shutdown('SIGINT'));
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
    for (const c of stack.children) {
      void c.exited.then((code) => {
        if (!stopping) err(`clipper: ${c.name} exited with ${code}; see ${path.join(stack.logDir, `${c.name}.log`)}`);
      });
    }
    out(`clipper: query API ${stack.ingressUrl}, admin API ${stack.adminUrl}, dashboard ${stack.ingressUrl}/dashboard, logs in ${stack.logDir}`);
    if (o.demo) {
      out('clipper: registering the demo app "digits" and waiting for its model to load…');
      try {
        await registerDemo(stack);
      } catch (e) {
        err(`clipper: ${(e as Error).message}`);
        await shutdown('demo failed');
        return;
      }
      const row = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0];
      out('clipper: ready. Try (this row is a handwritten 0):');
      out(`  curl -s -X POST -H 'Content-Type: application/json' -d '{"input": ${JSON.stringify(row)}}' ${stack.ingressUrl}/digits/predict`);
      out(`  node dist/cli/clipper.js predict digits '${JSON.stringify(row)}'`);
    }
    out('clipper: running; Ctrl-C stops everything.');
  });

program
  .command('predict <app> [input]')
  .description('send one query (a JSON value, e.g. "[1,2,3]") over HTTP, or over NATS with --nats')
  .option('--url <url>', 'query API URL', process.env.CLIPPER_URL ?? 'http://127.0.0.1:1337')
  .option('--nats [url]', 'send on NATS (msgpack) instead of HTTP')
  .option('--prefix <prefix>', 'subject prefix for --nats', process.env.CLIPPER_PREFIX ?? 'clipper')
  .option('--file <path>', 'read the request body (JSON with "input" or "input_batch") from a file')
  .option('--uid <uid>', 'user id')
  .option('--version <version>', 'model version')
  .action(async (app: string, input: string | undefined, o: { url: string; nats?: string | boolean; prefix: string; file?: string; uid?: string; version?: string }) => {
    const body = (o.file ? json(fs.readFileSync(o.file, 'utf8')) : { input: input === undefined ? undefined : json(input) }) as Record<string, unknown>;
    if (o.uid) body.uid = o.uid;
    if (o.version) body.version = o.version;
    if (o.nats) {
      const nc = await connect({ servers: typeof o.nats === 'string' ? o.nats : (process.env.NATS_URL ?? 'nats://127.0.0.1:4222') });
      try {
        const msg = await nc.request(new Subjects(o.prefix).predict(app), encode(body), { timeout: 30_000 });
        const res = decode(msg.data) as Record<string, unknown>;
        const toJson = (p: Record<string, unknown>): void => {
          if (typeof p.output === 'object' && p.output !== null) p.output = toJsonValue(p.output as Tensor);
        };
        toJson(res);
        if (Array.isArray(res.batch_predictions)) res.batch_predictions.forEach((p) => toJson(p as Record<string, unknown>));
        print(res);
        if (msg.headers?.get('Clipper-Error')) process.exitCode = 1;
      } finally {
        await nc.close();
      }
      return;
    }
    const res = await fetch(`${o.url}/${encodeURIComponent(app)}/predict`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    print(await res.json());
    if (!res.ok) process.exitCode = 1;
  });

program.command('ping').description('check the admin API').action(async () => print(await admin().call('ping')));

program
  .command('add-app <name>')
  .description('register an application')
  .requiredOption('--input-type <type>', 'doubles | floats | ints | bytes | strings')
  .option('--input-shape <dims>', 'shape of one input, e.g. 64 or 8,8')
  .option('--default-output <text>', 'output when no model answers in time', '')
  .option('--slo-micros <n>', 'latency objective in microseconds', int, 100_000)
  .option('--policy <name>', 'correction policy', 'single')
  .action(async (name: string, o: { inputType: string; inputShape?: string; defaultOutput: string; sloMicros: number; policy: string }) => {
    print(await admin().call('add_app', {
      name, input_type: o.inputType, default_output: o.defaultOutput, latency_slo_micros: o.sloMicros, policy: o.policy,
      ...(o.inputShape ? { input_shape: o.inputShape.split(',').map(Number) } : {}),
    }));
  });

program.command('delete-app <name>').description('remove an application and its links').action(async (name: string) => print(await admin().call('delete_app', { name })));

program
  .command('add-model <name> <version> <path>')
  .description('register a model version (it becomes the current version)')
  .requiredOption('--wrapper <kind>', 'onnx | js')
  .requiredOption('--input-type <type>', 'doubles | floats | ints | bytes | strings')
  .option('--batch-size <n>', 'max batch size, -1 for adaptive', int, -1)
  .option('--replicas <n>', 'worker replicas', int, 1)
  .option('--sizer <kind>', 'adaptive batch sizer: aimd | quantile')
  .option('--max-batch-size <n>', 'upper bound for adaptive batch sizes', int)
  .option('--batch-delay-ms <ms>', 'delayed batching: wait up to this long for a fuller batch', Number)
  .option('--max-queue-length <n>', 'refuse tasks beyond this queue length', int)
  .option('--slo-fraction <x>', 'share of the tightest linked SLO one batch may take (0..1]', Number)
  .action(async (name: string, version: string, file: string, o: { wrapper: string; inputType: string; batchSize: number; replicas: number; sizer?: string; maxBatchSize?: number; batchDelayMs?: number; maxQueueLength?: number; sloFraction?: number }) => {
    const batching = Object.fromEntries(Object.entries({ sizer: o.sizer, max_batch_size: o.maxBatchSize, delay_ms: o.batchDelayMs, max_queue_length: o.maxQueueLength, slo_fraction: o.sloFraction }).filter(([, v]) => v !== undefined));
    print(await admin().call('add_model', {
      model_name: name, model_version: version, model_data_path: path.resolve(file), wrapper: o.wrapper, input_type: o.inputType, batch_size: o.batchSize, num_replicas: o.replicas,
      ...(Object.keys(batching).length ? { batching } : {}),
    }));
  });

program
  .command('set-num-replicas <name> <replicas>')
  .description('change how many worker replicas a model version runs (the agent applies it live)')
  .option('--version <version>', 'model version (default: the current one)')
  .action(async (name: string, replicas: string, o: { version?: string }) => print(await admin().call('set_num_replicas', { model_name: name, num_replicas: int(replicas), ...(o.version ? { model_version: o.version } : {}) })));
program.command('set-model-version <name> <version>').description('roll a model to a registered version').action(async (name: string, version: string) => print(await admin().call('set_model_version', { model_name: name, model_version: version })));
program.command('link <app> <models...>').description('link models to an application').action(async (app: string, models: string[]) => print(await admin().call('add_model_links', { app_name: app, model_names: models })));
program.command('unlink <app> <models...>').description('remove model links').action(async (app: string, models: string[]) => print(await admin().call('delete_model_links', { app_name: app, model_names: models })));
program.command('apps').description('list applications').option('-v, --verbose', 'full records').action(async (o: { verbose?: boolean }) => print(await admin().call('get_all_applications', { verbose: !!o.verbose })));
program.command('app <name>').description('show one application').action(async (name: string) => print(await admin().call('get_application', { name })));
program.command('models').description('list model versions').option('-v, --verbose', 'full records').action(async (o: { verbose?: boolean }) => print(await admin().call('get_all_models', { verbose: !!o.verbose })));
program.command('model <name> <version>').description('show one model version').action(async (name: string, version: string) => print(await admin().call('get_model', { model_name: name, model_version: version })));
program.command('linked <app>').description('models linked to an application').action(async (app: string) => print(await admin().call('get_linked_models', { app_name: app })));

// ---- feedback: stats and replay of the policy shards' learned state ---------------------------------

interface NatsCliOptions { nats?: string; prefix: string }

const natsOptions = (c: Command): Command => c
  .option('--nats <url>', 'NATS server', process.env.NATS_URL ?? 'nats://127.0.0.1:4222')
  .option('--prefix <prefix>', 'subject prefix', process.env.CLIPPER_PREFIX ?? 'clipper');

/** The policy shards owned by running policy processes of this deployment. */
async function ownedPolicyShards(nc: NatsConnection, prefix: string): Promise<number[]> {
  const owned = new Set<number>();
  for await (const info of await nc.services.client().info('clipper-policy')) {
    if ((info.metadata?.prefix ?? prefix) !== prefix) continue;
    for (const s of (info.metadata?.owned ?? '').split(',')) if (s !== '') owned.add(Number(s));
  }
  if (owned.size === 0) throw new Error('no policy process answers (is the stack running, with this --prefix?)');
  return [...owned].sort((a, b) => a - b);
}

async function controlRequest(nc: NatsConnection, subjects: Subjects, shard: number, req: PolicyControlRequest, timeoutMs: number): Promise<PolicyControlReply> {
  const msg = await nc.request(subjects.policyControl(shard), encode(req), { timeout: timeoutMs });
  const failure = errorFromReply(msg);
  if (failure) throw failure;
  return policyControlReplyMessage.parse(decode(msg.data));
}

const feedback = program.command('feedback').description('the feedback path: learned state per policy shard, and replay');

natsOptions(feedback.command('stats'))
  .description('observations stored, applied and pending for an app, per policy shard')
  .requiredOption('--app <app>', 'application')
  .option('--state', 'include each shard\'s policy state (weights)')
  .action(async (o: NatsCliOptions & { app: string; state?: boolean }) => {
    const subjects = new Subjects(o.prefix);
    const nc = await connect({ servers: o.nats });
    try {
      const jsm = await nc.jetstreamManager();
      const shards: Record<string, unknown>[] = [];
      for await (const s of await nc.services.client().stats('clipper-policy')) {
        if ((s.metadata?.prefix ?? o.prefix) !== o.prefix) continue;
        const data = s.endpoints?.[0]?.data as { feedback?: Record<string, { shard: number; apps: Record<string, { applied: number; feedback_seq: number }>; lag: number; last_feedback_seq: number; snapshots: number; replaying: boolean } | null> } | undefined;
        for (const st of Object.values(data?.feedback ?? {})) {
          if (!st) continue;
          const a = st.apps[o.app] ?? { applied: 0, feedback_seq: 0 };
          const row: Record<string, unknown> = { shard: st.shard, applied: a.applied, feedback_seq: a.feedback_seq, lag: st.lag, last_feedback_seq: st.last_feedback_seq, snapshots: st.snapshots, replaying: st.replaying };
          if (o.state) row.state = (await controlRequest(nc, subjects, st.shard, { v: PROTOCOL_VERSION, op: 'state', app: o.app }, 10_000)).state ?? null;
          shards.push(row);
        }
      }
      shards.sort((a, b) => (a.shard as number) - (b.shard as number));
      print({
        app: o.app,
        stored: await countMessages(jsm, subjects.feedbackStream(), subjects.feedbackRecords(undefined, o.app)),
        outcomes: await countMessages(jsm, subjects.outcomeStream(), subjects.outcomes(undefined, o.app)),
        applied: shards.reduce((n, r) => n + (r.applied as number), 0),
        lag: shards.reduce((n, r) => n + (r.lag as number), 0),
        shards,
      });
    } finally {
      await nc.close();
    }
  });

natsOptions(feedback.command('replay'))
  .description('reset an app\'s learned state and re-apply its stored outcomes (no model evaluation), in the owning policy processes')
  .requiredOption('--app <app>', 'application')
  .option('--from <seq|time>', 'only observations from this feedback sequence (the number in a feedback_id) or ISO time on')
  .option('--timeout <ms>', 'give up after this long', int, 600_000)
  .action(async (o: NatsCliOptions & { app: string; from?: string; timeout: number }) => {
    const subjects = new Subjects(o.prefix);
    const req: PolicyControlRequest = { v: PROTOCOL_VERSION, op: 'replay', app: o.app };
    if (o.from !== undefined) {
      if (/^\d+$/.test(o.from)) req.from_seq = Number(o.from);
      else if (Number.isFinite(Date.parse(o.from))) req.from_unix_ms = Date.parse(o.from);
      else throw new InvalidArgumentError(`--from ${o.from}: neither a sequence number nor an ISO time`);
    }
    const nc = await connect({ servers: o.nats });
    try {
      const shards = await ownedPolicyShards(nc, o.prefix);
      const jsm = await nc.jetstreamManager();
      const stored = await countMessages(jsm, subjects.outcomeStream(), subjects.outcomes(undefined, o.app));
      const progress = new Map<number, ReplayProgress>();
      const inbox = createInbox();
      const sub = nc.subscribe(inbox, {
        callback: (_e, m) => {
          try {
            const p = replayProgressMessage.parse(decode(m.data));
            progress.set(p.shard, p);
          } catch {
            // a malformed progress message only costs a progress line
          }
        },
      });
      const started = Date.now();
      const show = (): void => {
        let processed = 0;
        let total = 0;
        for (const shard of shards) {
          processed += progress.get(shard)?.processed ?? 0;
          total += progress.get(shard)?.total ?? 0;
        }
        const s = (Date.now() - started) / 1000;
        err(`replay ${o.app}: ${processed}/${progress.size === shards.length ? total : Math.max(total, stored)} outcomes (${Math.round(processed / Math.max(s, 1e-3))} obs/s)`);
      };
      const timer = setInterval(show, 500);
      let replies: PolicyControlReply[];
      try {
        replies = await Promise.all(shards.map((shard) => controlRequest(nc, subjects, shard, { ...req, progress_subject: inbox }, o.timeout)));
      } finally {
        clearInterval(timer);
        await nc.flush();
        sub.unsubscribe();
      }
      show();
      const replayed = replies.reduce((n, r) => n + (r.replayed ?? 0), 0);
      // Shards replay in parallel: the slowest one's time is the replay's.
      const seconds = Math.max(...replies.map((r) => r.seconds ?? 0));
      out(JSON.stringify({ app: o.app, replayed, seconds: Number(seconds.toFixed(3)), obs_per_s: seconds > 0 ? Math.round(replayed / seconds) : 0 }));
    } finally {
      await nc.close();
    }
  });

// ---- observing: status of the deployment, and the actors' logs ------------------------------------

program
  .command('status')
  .description('apps, models, replicas, SLO attainment and cache hit rates, from the ingress (GET /status)')
  .option('--url <url>', 'query API URL', process.env.CLIPPER_URL ?? 'http://127.0.0.1:1337')
  .option('--json', 'print the ingress\'s JSON snapshot')
  .action(async (o: { url: string; json?: boolean }) => {
    let res: Response;
    try {
      res = await fetch(`${o.url}/status`);
    } catch (e) {
      throw new Error(`no ingress answers at ${o.url} (${(e as Error).message}); is the stack running (clipper up)?`);
    }
    if (!res.ok) throw new Error(`GET ${o.url}/status: ${res.status} ${await res.text()}`);
    const snapshot = (await res.json()) as StatusSnapshot;
    if (o.json) print(snapshot);
    else out(formatStatus(snapshot));
  });

const DEFAULT_LOG_DIR = process.env.CLIPPER_LOG_DIR ?? path.join(PROJECT_ROOT, 'data', 'logs');

/** The last `n` lines of a file, reading backwards in chunks. */
function lastLines(file: string, n: number): string[] {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    let text = '';
    let pos = size;
    while (pos > 0 && text.split('\n').length <= n + 1) {
      const len = Math.min(pos, 1 << 16);
      pos -= len;
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, pos);
      text = buf.toString('utf8') + text;
    }
    return text.split('\n').filter((l) => l !== '').slice(-n);
  } finally {
    fs.closeSync(fd);
  }
}

program
  .command('logs [name]')
  .description('list the actors\' log files (clipper up writes them to data/logs/), print the end of one, or follow one query through all of them')
  .option('--dir <dir>', 'log folder', DEFAULT_LOG_DIR)
  .option('-n, --lines <n>', 'lines to print', int, 50)
  .option('-f, --follow', 'keep printing what is appended')
  .option('--query <id>', 'every line about this query_id (run the actors with LOG_LEVEL=debug), across all logs')
  .action(async (name: string | undefined, o: { dir: string; lines: number; follow?: boolean; query?: string }) => {
    if (!fs.existsSync(o.dir)) throw new Error(`no log folder ${o.dir} (clipper up writes one under its --data-dir; --dir points elsewhere)`);
    const files = fs.readdirSync(o.dir).filter((f) => f.endsWith('.log')).sort();
    if (o.query) {
      const readline = await import('node:readline');
      let hits = 0;
      for (const f of name ? files.filter((x) => x === name || x === `${name}.log`) : files) {
        const lines = readline.createInterface({ input: fs.createReadStream(path.join(o.dir, f)), crlfDelay: Infinity });
        for await (const line of lines) {
          if (!line.includes(o.query)) continue;
          hits++;
          out(`${f.replace(/\.log$/, '')}: ${line}`);
        }
      }
      err(`${hits} line(s) mention ${o.query} in ${files.length} log file(s) under ${o.dir}${hits === 0 ? ' (queries are logged at debug level: LOG_LEVEL=debug clipper up)' : ''}`);
      return;
    }
    if (!name) {
      out(formatTable(['LOG', 'BYTES', 'MODIFIED'], files.map((f) => {
        const st = fs.statSync(path.join(o.dir, f));
        return [f.replace(/\.log$/, ''), String(st.size), st.mtime.toISOString()];
      })));
      err(`(${o.dir}; \`clipper logs <name>\` prints the end of one)`);
      return;
    }
    const file = path.join(o.dir, name.endsWith('.log') ? name : `${name}.log`);
    if (!fs.existsSync(file)) throw new Error(`no log ${file}; \`clipper logs\` lists them`);
    for (const line of lastLines(file, o.lines)) out(line);
    if (!o.follow) return;
    let offset = fs.statSync(file).size;
    fs.watchFile(file, { interval: 250 }, (cur) => {
      if (cur.size < offset) offset = 0; // truncated or replaced
      if (cur.size === offset) return;
      const fd = fs.openSync(file, 'r');
      const buf = Buffer.alloc(cur.size - offset);
      fs.readSync(fd, buf, 0, buf.length, offset);
      fs.closeSync(fd);
      offset = cur.size;
      process.stdout.write(buf);
    });
  });

program.parseAsync().catch((e: unknown) => {
  if (e instanceof ClipperError) err(`clipper: ${e.code}: ${e.message}`);
  else err(`clipper: ${(e as Error).message ?? String(e)}`);
  process.exit(1);
});

