/**
 * A bare NATS echo responder in its own process: the floor under every NATS hop on this machine.
 * `node dist/loadtest/nats-echo.js <url> <subject>`; sends "ready" over IPC once subscribed.
 */
import { connect } from 'nats';

const [url, subject] = process.argv.slice(2);
const nc = await connect({ servers: url! });
nc.subscribe(subject!, { callback: (_err, msg) => msg.respond(msg.data) });
await nc.flush();
process.send?.('ready');
process.on('SIGTERM', () => void nc.close().then(() => process.exit(0)));
