/**
 * One target's load generator in a process of its own (`remoteGenerator`): the bench's targets then
 * share no heap, event loop or code paths. With one shared generator process each target did worse
 * the more targets took turns with it (AIMD over NATS: 1884/s swept alone, 959–1511/s in full runs;
 * 1873 and 2272/s in the first two full runs with a process per target). The parent sends `{init}`
 * once, then `{step}` messages, each answered with the step's OpenLoopResult, and `{release}` to move
 * to fresh HTTP connections (the old ones close once their requests are done).
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from 'nats';
import { httpSender, natsSender, runOpenLoop, type ClosableSend, type OpenLoopResult, type Send } from './open-loop.js';

export type GeneratorTarget =
  | { kind: 'http'; baseUrl: string; path: string; body: string; sockets: number }
  | { kind: 'nats'; natsUrl: string; subject: string; payload: Uint8Array };

export interface StepRequest { rate: number; durationS: number; seed: number; drainTimeoutMs: number }

export interface RemoteGenerator {
  runStep(step: StepRequest): Promise<OpenLoopResult>;
  release(): void;
  close(): Promise<void>;
}

type ToChild = { init: GeneratorTarget } | { step: StepRequest } | { release: true };
type FromChild = { ready: true } | { result: OpenLoopResult } | { error: string };

/** Starts a generator process for `target`; its steps run one at a time. */
export async function remoteGenerator(target: GeneratorTarget): Promise<RemoteGenerator> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = (): Promise<FromChild> => new Promise((resolve, reject) => {
    const onExit = (code: number | null): void => reject(new Error(`load generator exited with ${code}`));
    child.once('exit', onExit);
    child.once('message', (m) => {
      child.off('exit', onExit);
      resolve(m as FromChild);
    });
  });
  const ask = async (m: ToChild): Promise<FromChild> => {
    const answer = next();
    child.send(m);
    const a = await answer;
    if ('error' in a) throw new Error(`load generator: ${a.error}`);
    return a;
  };
  await ask({ init: target });
  return {
    async runStep(step) {
      return ((await ask({ step })) as { result: OpenLoopResult }).result;
    },
    release() {
      child.send({ release: true } satisfies ToChild);
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function serve(): Promise<void> {
  let send: Send | undefined;
  let http: ClosableSend | undefined;
  let nc: NatsConnection | undefined;
  process.on('message', (m: ToChild) => {
    void (async () => {
      try {
        if ('init' in m) {
          const t = m.init;
          if (t.kind === 'http') send = http = httpSender(t.baseUrl, t.path, t.body, { agentSockets: t.sockets });
          else {
            nc = await connect({ servers: t.natsUrl, noAsyncTraces: true });
            send = natsSender(nc, t.subject, t.payload);
          }
          process.send!({ ready: true } satisfies FromChild);
        } else if ('step' in m) {
          const r = await runOpenLoop({ send: send!, ...m.step });
          process.send!({ result: r } satisfies FromChild);
        } else http?.release();
      } catch (err) {
        process.send!({ error: (err as Error).message } satisfies FromChild);
      }
    })();
  });
  process.on('SIGTERM', () => {
    http?.close();
    void (nc?.close() ?? Promise.resolve()).finally(() => process.exit(0));
  });
  process.on('disconnect', () => process.exit(0));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await serve();
