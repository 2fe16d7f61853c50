import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { httpSender, runOpenLoop, type Outcome } from '../../loadtest/open-loop.js';
import { niceTicks } from '../../loadtest/plot.js';
import { remoteGenerator } from '../../loadtest/step-runner.js';

const after = (ms: number, outcome: Outcome) => () => new Promise<Outcome>((resolve) => setTimeout(() => resolve(outcome), ms));

describe('load generator', () => {
  it('load generator - is open-loop: arrivals keep their rate even when answers are slow', async () => {
    // 200/s for 1 s against a server that takes 300 ms: a closed loop with one client would send ~3.
    const r = await runOpenLoop({ send: after(300, 'ok'), rate: 200, durationS: 1, seed: 7, drainTimeoutMs: 2_000 });
    expect(r.sent).to.be.within(150, 250);
    expect(r.ok).to.equal(r.sent);
    expect(r.latency.p50_ms).to.be.at.least(290);
  });

  it('load generator - counts rejections, defaults and errors apart from answers', async () => {
    let i = 0;
    const outcomes: Outcome[] = ['ok', 'rejected', 'default', 'error'];
    const r = await runOpenLoop({ send: () => Promise.resolve(outcomes[i++ % 4]!), rate: 400, durationS: 0.5, seed: 3 });
    expect(r.ok + r.rejected + r.defaults + r.errors).to.equal(r.sent);
    expect(r.rejected).to.be.at.least(Math.floor(r.sent / 4) - 1);
    expect(r.defaults).to.be.at.least(Math.floor(r.sent / 4) - 1);
  });

  it('load generator - a generator process of its own runs steps against an HTTP server and reports them', async () => {
    // A stand-in server: every other request refused with 503, the rest answered as model outputs.
    let n = 0;
    const bodies: string[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        bodies.push(body);
        if (n++ % 2 === 1) res.writeHead(503).end();
        else res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"default":false}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const g = await remoteGenerator({ kind: 'http', baseUrl: `http://127.0.0.1:${port}`, path: '/p', body: '{"input":[1]}', sockets: 8 });
    try {
      const r = await g.runStep({ rate: 200, durationS: 0.5, seed: 5, drainTimeoutMs: 2_000 });
      expect(r.sent).to.be.within(60, 140);
      expect(r.sent).to.equal(n);
      expect(r.ok + r.rejected).to.equal(r.sent);
      expect(r.ok).to.equal(Math.ceil(n / 2));
      expect(bodies.every((b) => b === '{"input":[1]}')).to.equal(true);
      g.release();
    } finally {
      await g.close();
      server.close();
    }
  });

  it('load generator - the HTTP sender tells model answers, defaults (with their explanation), errors and timeouts apart, and stamps X-Request-Start when asked', async () => {
    const stamps: (string | undefined)[] = [];
    const server = http.createServer((req, res) => {
      stamps.push(req.headers['x-request-start'] as string | undefined);
      req.resume();
      req.on('end', () => {
        if (req.url === '/ok') res.writeHead(200).end('{"output":1,"default":false}');
        else if (req.url === '/default') res.writeHead(200).end('{"output":0,"default":true,"default_explanation":"m:1: no answer before the deadline"}');
        else if (req.url === '/bad') res.writeHead(400).end('{}');
        // '/slow': never answered
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const senders = ['/ok', '/default', '/bad', '/slow'].map((p) => httpSender(base, p, '{"input":[1]}', { agentSockets: 2, timeoutMs: 300 }));
    const why: string[] = [];
    senders[1]!.onDefault = (e) => why.push(e);
    try {
      senders[0]!.stampStart = true;
      expect(await senders[0]!(1_700_000_000_000.5)).to.equal('ok');
      expect(stamps[0]).to.equal('t=1700000000000.500');
      expect(await Promise.all(senders.slice(1).map((s) => s(Date.now())))).to.deep.equal(['default', 'error', 'timeout']);
      expect(stamps.slice(1)).to.deep.equal([undefined, undefined, undefined]);
      expect(why).to.deep.equal(['m:1: no answer before the deadline']);
    } finally {
      for (const s of senders) s.close();
      server.closeAllConnections();
      server.close();
    }
  });

  it('load generator - plot ticks are round numbers covering the range', () => {
    const ticks = niceTicks(1234);
    expect(ticks[0]).to.equal(0);
    expect(ticks[ticks.length - 1]).to.be.at.least(1234);
    const step = ticks[1]! - ticks[0]!;
    expect([1, 2, 2.5, 5, 10].map((m) => m * 10 ** Math.floor(Math.log10(step)))).to.include(step);
    for (const t of ticks) expect(t % step).to.equal(0);
  });
});
