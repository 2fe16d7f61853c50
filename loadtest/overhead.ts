/**
 * `npm run bench -- overhead`: the cost of the serving path itself. A light serial load (one
 * request at a time) against the no-op JS model through the full system (HTTP → ingress → NATS →
 * scheduler → worker → ingress), and in the same run against the baseline peer (one HTTP process
 * calling the same model directly). Rounds alternate between the two so machine noise hits both.
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import { connect } from 'nats';
import { DIST_ROOT, PROJECT_ROOT, schedForkOptions } from '../shared/process.js';
import { JsonPoster } from './http-client.js';
import { elapsedUs, LatencyRecorder, type LatencySummary } from './latency.js';
import { progress, startPeer, startSystem, waitForApp } from './harness.js';

export interface OverheadOptions {
  requests: number;
  warmup: number;
  rounds: number;
}

async function measure(poster: JsonPoster, path: string, body: string, n: number, recorder?: LatencyRecorder): Promise<void> {
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    const res = await poster.post(path, body);
    const us = elapsedUs(start);
    if (res.status !== 200 || res.body.includes('"default":true')) throw new Error(`bad answer ${res.status}: ${res.body.slice(0, 200)}`);
    recorder?.recordUs(us);
  }
}

/** Round trips of a bare NATS request/reply between two processes, through the same server. */
async function natsRoundTrips(url: string, n: number): Promise<LatencySummary> {
  // Under the actors' scheduling policy, as the nats-server it talks through.
  const echo = fork(path.join(DIST_ROOT, 'loadtest', 'nats-echo.js'), [url, 'bench.echo'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...schedForkOptions() });
  await new Promise((resolve) => echo.once('message', resolve));
  const nc = await connect({ servers: url });
  const recorder = new LatencyRecorder();
  const payload = new Uint8Array(300);
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    await nc.request('bench.echo', payload, { timeout: 5_000 });
    if (i >= n / 10) recorder.recordUs(elapsedUs(start));
  }
  await nc.close();
  echo.kill('SIGTERM');
  return recorder.summary();
}

export async function runOverhead(opts: OverheadOptions): Promise<Record<string, unknown>> {
  const model = path.join(PROJECT_ROOT, 'infra', 'models', 'noop.mjs');
  const input = Array.from({ length: 64 }, (_, i) => (i * 7) % 17);
  const body = JSON.stringify({ input });
  const system = await startSystem();
  const peer = await startPeer(model, 'js', input.length);
  try {
    await system.admin.call('add_model', { model_name: 'noop', model_version: '1', input_type: 'floats', wrapper: 'js', model_data_path: model, batch_size: -1 });
    await system.admin.call('add_app', { name: 'noop', input_type: 'floats', input_shape: [64], latency_slo_micros: 1_000_000, candidate_model_names: ['noop'] });
    await waitForApp(system, 'noop', body);
    const sys = new JsonPoster(system.stack.ingressUrl);
    const base = new JsonPoster(peer.url);
    progress(`warm-up: ${opts.warmup} requests each`);
    await measure(sys, '/noop/predict', body, opts.warmup);
    await measure(base, '/predict', body, opts.warmup);
    const full = new LatencyRecorder();
    const direct = new LatencyRecorder();
    const perRound = Math.ceil(opts.requests / opts.rounds);
    for (let r = 0; r < opts.rounds; r++) {
      await measure(sys, '/noop/predict', body, perRound, full);
      await measure(base, '/predict', body, perRound, direct);
      const f = full.summary();
      const d = direct.summary();
      progress(`round ${r + 1}/${opts.rounds}: system p50 ${f.p50_ms} ms p99 ${f.p99_ms} ms | peer p50 ${d.p50_ms} ms p99 ${d.p99_ms} ms`);
    }
    sys.close();
    base.close();
    progress('measuring the bare NATS round trip between two processes (the floor under each hop)');
    const rtt = await natsRoundTrips(system.stack.natsUrl, Math.max(2000, opts.requests));
    const f: LatencySummary = full.summary();
    const d: LatencySummary = direct.summary();
    return {
      bench: 'overhead',
      n: f.n,
      p50_ms: f.p50_ms,
      p99_ms: f.p99_ms,
      peer_p50_ms: d.p50_ms,
      peer_p99_ms: d.p99_ms,
      p90_ms: f.p90_ms,
      p999_ms: f.p999_ms,
      max_ms: f.max_ms,
      peer_p90_ms: d.p90_ms,
      peer_max_ms: d.max_ms,
      nats_rtt_p50_ms: rtt.p50_ms,
      nats_rtt_p99_ms: rtt.p99_ms,
      hops: 'HTTP → ingress → NATS → scheduler → NATS → worker → NATS → ingress → HTTP (3 NATS deliveries)',
      target: { p50_ms: 1.5, p99_ms: 4 },
      met: f.p50_ms <= 1.5 && f.p99_ms <= 4,
    };
  } finally {
    await peer.close();
    await system.close();
  }
}
