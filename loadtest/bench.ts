/**
 * Benchmarks: `npm run bench -- <name> [options]`. Each prints progress on stderr, writes its
 * result to loadtest/results/<name>-<time>.json, and prints that result as one JSON line last.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { PROJECT_ROOT } from '../shared/process.js';
import { runOverhead } from './overhead.js';
import { runBatching } from './batching.js';
import { OVERLOAD_MODELS, runOverload, type OverloadModel } from './overload.js';
import { writePlot, type PlotSpec } from './plot.js';
import { runReplicas } from './replicas.js';
import { runCache } from './cache.js';
import { runEnsemble } from './ensemble.js';
import { stealMeter } from './harness.js';
import { writeXyPlot, type XyPlotSpec } from './xy-plot.js';

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
}

function batchSize(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || (n < 1 && n !== -1)) throw new InvalidArgumentError('must be a positive integer or -1 (adaptive)');
  return n;
}

const stealSinceStart = stealMeter();

/** Writes the result (and its chart as SVG next to it, when given) and prints the JSON line. */
function finish(name: string, result: Record<string, unknown>, plot?: PlotSpec | { xy: XyPlotSpec }): void {
  result = { ...result, cpu_steal_pct: stealSinceStart() };
  const dir = path.join(PROJECT_ROOT, 'loadtest', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  if (plot) {
    const svg = file.replace(/\.json$/, '.svg');
    if ('xy' in plot) writeXyPlot(svg, plot.xy);
    else writePlot(svg, plot);
    result = { ...result, plot: path.relative(PROJECT_ROOT, svg) };
    process.stderr.write(`[bench] chart written to ${path.relative(PROJECT_ROOT, svg)}\n`);
  }
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  process.stderr.write(`[bench] result written to ${path.relative(PROJECT_ROOT, file)}\n`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

const program = new Command().name('bench').description('Clipper-on-NATS benchmarks');

program
  .command('overhead')
  .description('serial requests to a no-op model: full path vs a single-process baseline')
  .option('--requests <n>', 'measured requests per target', positive, 5000)
  .option('--warmup <n>', 'warm-up requests per target', positive, 1000)
  .option('--rounds <n>', 'alternating rounds', positive, 5)
  .action(async (o: { requests: number; warmup: number; rounds: number }) => finish('overhead', await runOverhead(o)));

program
  .command('batching')
  .description('adaptive batching vs batch size 1 vs the single-process peer: highest rate with P99 within a 20 ms SLO')
  .option('--step <s>', 'seconds per load step', positiveNumber, 4)
  .option('--start-rate <n>', 'first offered rate, requests/s', positiveNumber, 200)
  .option('--sockets <n>', 'HTTP client sockets', positive, 256)
  .option('--targets <list>', 'sweeps to run (comma-separated)', (v: string) => v.split(',').map((t) => t.trim()).filter(Boolean), ['peer', 'batch1', 'aimd', 'aimd-nats'])
  .action(async (o: { step: number; startRate: number; sockets: number; targets: string[] }) => {
    const { result, plot } = await runBatching({ stepS: o.step, startRate: o.startRate, sockets: o.sockets, targets: o.targets });
    finish('batching', result, plot);
  });

program
  .command('replicas')
  .description('scale-out: simulated accelerator with 1, 2 and 4 replicas, highest rate with P99 within 100 ms')
  .option('--step <s>', 'seconds per load step', positiveNumber, 4)
  .option('--start-rate <n>', 'first offered rate per replica, requests/s', positiveNumber, 40)
  .option('--batch-size <n>', 'batch_size of the simulated models (-1: adaptive)', batchSize, 1)
  .option('--batch-ms <ms>', 'time per batch of the simulated accelerator (SIM_BATCH_MS)', positiveNumber, 5)
  .option('--set-num-replicas', 'resize one model with set_num_replicas instead of registering three', false)
  .action(async (o: { step: number; startRate: number; batchSize: number; batchMs: number; setNumReplicas: boolean }) => {
    const { result, plot } = await runReplicas({ stepS: o.step, startRatePerReplica: o.startRate, batchSize: o.batchSize, batchMs: o.batchMs, setNumReplicas: o.setNumReplicas });
    finish('replicas', result, plot);
  });

program
  .command('overload')
  .description('an app at twice its capacity (the aimd app, or the simulated accelerator with --model sim): goodput, refusals, defaults and the tail')
  .addOption(new Option('--model <name>', 'the overloaded model: mlp (the aimd app: adaptive batching, the CPU runs short) or sim (the simulated accelerator, 5 ms per batch, batch_size 1: the model runs short)').choices(OVERLOAD_MODELS).default('mlp'))
  .option('--step <s>', 'seconds per load step of the capacity search', positiveNumber, 4)
  .option('--start-rate <n>', 'first offered rate of the capacity search, requests/s (default: 200 for mlp, 50 for sim)', positiveNumber)
  .option('--factor <x>', 'offered load as a multiple of capacity', positiveNumber, 2)
  .option('--duration <s>', 'seconds of overload, and of each 1× hold that checks the capacity', positiveNumber, 20)
  .option('--sockets <n>', 'HTTP client sockets', positive, 256)
  .option('--capacity <n>', 'take this capacity (requests/s) as given instead of searching for it and holding it (one unrecorded warm-up step, then one 1× hold at that rate)', positiveNumber)
  .option('--no-stamp-start', 'do not stamp the overload requests with X-Request-Start (the SLO clock then starts when the ingress reads them)')
  .action(async (o: { model: OverloadModel; step: number; startRate?: number; factor: number; duration: number; sockets: number; capacity?: number; stampStart: boolean }) => {
    const { result, plot } = await runOverload({ model: o.model, stepS: o.step, startRate: o.startRate ?? (o.model === 'sim' ? 50 : 200), factor: o.factor, overloadS: o.duration, sockets: o.sockets, capacity: o.capacity, stampStart: o.stampStart });
    finish('overload', result, plot);
  });

program
  .command('ensemble')
  .description('correction policies: exp4 vs the best single model, exp3 recovery from a bad deploy, anytime answers with a straggler, feedback ack and replay rates')
  .option('--feedback-passes <n>', 'passes over the feedback split for the exp4 app', positive, 1)
  .option('--recovery-steps <n>', 'exp3 query-then-feedback steps before (and after) the bad deploy', positive, 1000)
  .option('--window <n>', 'rolling-accuracy window of the exp3 run', positive, 100)
  .option('--straggler-rate <n>', 'requests/s in the straggler run', positiveNumber, 50)
  .option('--straggler-duration <s>', 'seconds of load per straggler run', positiveNumber, 15)
  .option('--replay-copies <n>', 'outcome records stored for the replay-rate measurement', positive, 100_000)
  .action(async (o: { feedbackPasses: number; recoverySteps: number; window: number; stragglerRate: number; stragglerDuration: number; replayCopies: number }) => {
    const { result } = await runEnsemble({ feedbackPasses: o.feedbackPasses, recoverySteps: o.recoverySteps, window: o.window, stragglerRate: o.stragglerRate, stragglerS: o.stragglerDuration, replayCopies: o.replayCopies });
    finish('ensemble', result);
  });

program
  .command('cache')
  .description('prediction cache: throughput at 0 % and 90 % repeats, hit and miss latency, approximate caching on noisy digits')
  .option('--step <s>', 'seconds per load step', positiveNumber, 4)
  .option('--start-rate <n>', 'first offered rate, requests/s', positiveNumber, 200)
  .option('--tolerance <x>', 'approximate-cache tolerance (L2, 0..16 pixel scale)', positiveNumber, 7)
  .action(async (o: { step: number; startRate: number; tolerance: number }) => {
    const { result, plot } = await runCache({ stepS: o.step, startRate: o.startRate, tolerance: o.tolerance });
    finish('cache', result, { xy: plot });
  });

program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
