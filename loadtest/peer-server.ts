/**
 * The baseline peer: what a user would write instead of a serving system. One node:http process
 * that parses the JSON body, checks it, and calls the model directly per request (no batching, no
 * cache, no NATS). `node dist/loadtest/peer-server.js --model <file> --wrapper js|onnx --port N`.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { createLogger } from '../shared/logging.js';
import { loadWrapper } from '../wrappers/mod.js';
import { fromNumbers, toJsonValue } from '../shared/tensor.js';
import type { ModelRecord } from '../shared/registry.js';

const { values } = parseArgs({ options: { model: { type: 'string' }, wrapper: { type: 'string', default: 'js' }, port: { type: 'string', default: '0' }, length: { type: 'string', default: '64' } } });
const log = createLogger('peer', 'warn');
const record: ModelRecord = {
  name: 'peer', version: '1', input_type: 'floats', wrapper: values.wrapper === 'onnx' ? 'onnx' : 'js', model_data_path: values.model!,
  batch_size: 1, num_replicas: 1, created_unix_ms: Date.now(),
};
const model = await loadWrapper(record, process.cwd(), log);
const length = Number(values.length);

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    void (async () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { input?: unknown };
        if (!Array.isArray(body.input) || body.input.length !== length || !body.input.every((x) => typeof x === 'number' && Number.isFinite(x))) {
          res.writeHead(400, { 'Content-Type': 'application/json' }).end('{"error":"bad input"}');
          return;
        }
        const [output] = await model.predict([fromNumbers('FP32', body.input as number[])]);
        if (!output || output instanceof Error) throw output ?? new Error('no output');
        const text = JSON.stringify({ output: toJsonValue(output!), default: false });
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
      } catch (err) {
        res.writeHead(500, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: (err as Error).message }));
      }
    })();
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(values.port), '127.0.0.1', () => {
  const addr = server.address();
  process.send?.({ port: typeof addr === 'object' && addr ? addr.port : 0 });
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
