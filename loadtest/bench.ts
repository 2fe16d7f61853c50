/**
 * Benchmarks: `npm run bench -- <name> [options]`. Each prints progress on stderr, writes its
 * result to loadtest/results/<name>-<time>.json, and prints that result as one JSON line last.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { PROJECT_ROOT } from '../shared/process.js';
import { runOverhead } from './overhead.js';

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function finish(name: string, result: Record<string, unknown>): void {
  const dir = path.join(PROJECT_ROOT, 'loadtest', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
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

program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
