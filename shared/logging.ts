/** Structured logs through pino: one child logger per actor, data in fields, constant messages. */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function createLogger(actor: string, level: LevelWithSilent = 'info', fields: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { actor, pid: process.pid, ...fields }, timestamp: pino.stdTimeFunctions.isoTime });
}
