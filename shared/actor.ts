/**
 * Actor lifecycle. Every actor has `start()` and `stop()`; `runActor` turns one into a process:
 * SIGTERM/SIGINT drain it (stop taking work, finish in-flight work within a grace time, close), an
 * uncaught error is logged and exits non-zero, and the process exits by itself when its parent dies,
 * so a killed supervisor leaves no orphans.
 */
import type { Logger } from './logging.js';

export interface Actor {
  start(): Promise<void>;
  /** Drains: stops taking work, finishes or hands back in-flight work within `graceMs`, closes. */
  stop(graceMs?: number): Promise<void>;
}

export const DEFAULT_GRACE_MS = 5_000;

export async function runActor(name: string, log: Logger, create: () => Promise<Actor> | Actor, graceMs = DEFAULT_GRACE_MS): Promise<void> {
  let actor: Actor | undefined;
  let stopping = false;
  const parent = process.ppid;

  const shutdown = async (reason: string, code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, `${name} stopping`);
    const timer = setTimeout(() => {
      log.error({ graceMs }, `${name} did not stop in time`);
      process.exit(code || 1);
    }, graceMs + 1_000);
    timer.unref();
    try {
      await actor?.stop(graceMs);
    } catch (err) {
      log.error({ err }, `${name} stop failed`);
      code = code || 1;
    }
    log.info({}, `${name} stopped`);
    log.flush?.();
    process.exit(code);
  };

  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, `${name} uncaught exception`);
    void shutdown('uncaughtException', 1);
  });
  process.on('unhandledRejection', (err) => {
    log.fatal({ err }, `${name} unhandled rejection`);
    void shutdown('unhandledRejection', 1);
  });
  // Orphan guard: the supervisor died without stopping us.
  setInterval(() => {
    if (process.ppid !== parent) void shutdown('parent exited', 0);
  }, 1_000).unref();

  try {
    actor = await create();
    await actor.start();
    log.info({}, `${name} started`);
  } catch (err) {
    log.fatal({ err }, `${name} failed to start`);
    await shutdown('start failed', 1);
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
