/**
 * The dashboard in a real browser: headless Chromium (playwright-core, the system's chromium) opens
 * `GET /dashboard` of a real stack, queries and feedback flow, and the charts' figures in the DOM
 * show them. Saves a screenshot to test-output/dashboard.png.
 *
 * Needs /usr/bin/chromium (Debian: `apt-get install -y chromium`; .ci/run installs it) or
 * CHROMIUM_PATH. Without one the suite is skipped, unless CLIPPER_REQUIRE_BROWSER=1 (CI) makes
 * that a failure.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PROJECT_ROOT } from '../../shared/process.js';
import { eventually, startTestNats, stopTestNats, type TestNats } from '../helpers/nats.js';
import { addJsModel, postJson, startTestStack, stopTestStack, waitForModelAnswer, type TestStack } from '../helpers/stack.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOT = path.join(PROJECT_ROOT, 'test-output', 'dashboard.png');

describe('dashboard (headless Chromium, real processes)', function () {
  this.timeout(120_000);
  let nats: TestNats | undefined;
  let sys: TestStack | undefined;
  let browser: Browser | undefined;
  let page: Page;

  const url = (p: string): string => `${sys!.stack.ingressUrl}${p}`;
  /** The text of the figure with these data attributes, once it is there. */
  const figure = async (attrs: Record<string, string>): Promise<string> => {
    const selector = Object.entries(attrs).map(([k, v]) => `[data-${k}="${v}"]`).join('');
    return (await page.locator(selector).first().textContent({ timeout: 10_000 })) ?? '';
  };
  const numeric = async (attrs: Record<string, string>, what: string, ok: (n: number) => boolean = Number.isFinite): Promise<number> =>
    eventually(async () => {
      const n = Number.parseFloat(await figure(attrs));
      return Number.isFinite(n) && ok(n) ? { n } : undefined;
    }, 15_000, what).then((r) => r.n, async (err: Error) => {
      throw new Error(`${err.message}; the figure reads ${JSON.stringify(await figure(attrs).catch(() => '(none)'))}`);
    });

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      if (process.env.CLIPPER_REQUIRE_BROWSER === '1') throw new Error(`no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`);
      console.log(`      skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`);
      this.skip();
    }
    nats = await startTestNats();
    [sys, browser] = await Promise.all([
      startTestStack(nats, { CLIPPER_STATS_POLL_MS: '500' }),
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] }),
    ]);
    await addJsModel(sys, 'sum', 'sum.mjs', { batching: { delay_ms: 2 } });
    await addJsModel(sys, 'memo', 'sum.mjs', { cache: { mode: 'exact' } });
    await addJsModel(sys, 'right', 'classes-right.mjs');
    await addJsModel(sys, 'wrong', 'classes-wrong.mjs');
    await sys.admin.call('add_app', { name: 'calc', input_type: 'doubles', latency_slo_micros: 100_000, candidate_model_names: ['sum'] });
    await sys.admin.call('add_app', { name: 'memo', input_type: 'doubles', latency_slo_micros: 50_000, candidate_model_names: ['memo'] });
    await sys.admin.call('add_app', { name: 'vote', input_type: 'doubles', input_shape: [3], policy: 'exp4', default_output: 'none', latency_slo_micros: 200_000, candidate_model_names: ['right', 'wrong'] });
    await waitForModelAnswer(sys, 'calc', { input: [0] });
    await waitForModelAnswer(sys, 'memo', { input: [0], cache: false });
    await waitForModelAnswer(sys, 'vote', { input: [0, 0, 1] });
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(url('/dashboard'));
  });

  after(async () => {
    await browser?.close();
    await stopTestStack(sys);
    await stopTestNats(nats);
  });

  it('dashboard - shows the queries sent, their P99 and throughput, batch sizes, cache hits, replicas and policy weights', async () => {
    expect(await page.title()).to.equal('Clipper dashboard');
    const status = async () => (await (await fetch(url('/status'))).json()) as { apps: { name: string; requests_total: number }[] };
    const before = (await status()).apps.find((a) => a.name === 'calc')!.requests_total;
    // Traffic for a few seconds: bursts of concurrent queries (so batches form), repeated inputs, feedback.
    let sent = 0;
    for (let round = 0; round < 8; round++) {
      const burst = Array.from({ length: 12 }, (_, i) => postJson(url('/calc/predict'), { input: [round, i] }));
      sent += burst.length;
      await Promise.all([
        ...burst,
        postJson(url('/memo/predict'), { input: [round % 2, 1] }),
        postJson(url('/vote/predict'), { uid: round, input: [round % 3, 1, 2] }),
        postJson(url('/vote/update'), { uid: round, input: [round % 3 === 0 ? 5 : 1, round % 3 === 1 ? 5 : 1, round % 3 === 2 ? 5 : 1], label: round % 3 }),
      ]);
      await new Promise((r) => setTimeout(r, 400));
    }

    const requests = await numeric({ metric: 'requests', app: 'calc' }, 'the request count to show every query', (n) => n === before + sent);
    expect(requests).to.equal(before + sent);
    expect(await numeric({ metric: 'qps', app: 'calc' }, 'throughput', (n) => n > 0)).to.be.greaterThan(0);
    const p99 = await numeric({ metric: 'p99', app: 'calc' }, 'a P99');
    const p50 = await numeric({ metric: 'p50', app: 'calc' }, 'a P50');
    expect(p99).to.be.greaterThan(0).and.at.least(p50);
    expect(await numeric({ metric: 'slo-attainment', app: 'calc' }, 'SLO attainment')).to.be.within(0, 100);
    expect(await numeric({ metric: 'batch-size', model: 'sum' }, 'a mean batch size', (n) => n >= 1)).to.be.at.least(1);
    expect(await numeric({ metric: 'batch-size-limit', model: 'sum' }, 'the sizer\'s limit', (n) => n >= 1)).to.be.at.least(1);
    // Not every query reaches the scheduler: under overload the ingress sheds some first.
    expect(await numeric({ metric: 'tasks', model: 'sum' }, 'the scheduler\'s tasks', (n) => n > 0)).to.be.greaterThan(0);
    expect(await numeric({ metric: 'hit-rate', model: 'memo' }, 'a cache hit rate', (n) => n > 0)).to.be.within(0, 100);
    expect(await figure({ metric: 'replica-state', model: 'sum', replica: '0' })).to.equal('up');
    const right = await numeric({ metric: 'weight', app: 'vote', model: 'right' }, 'the right model\'s weight');
    const wrong = await numeric({ metric: 'weight', app: 'vote', model: 'wrong' }, 'the wrong model\'s weight');
    expect(right + wrong).to.be.closeTo(1, 0.002);
    expect(await figure({ metric: 'requests', app: 'vote' })).to.match(/^\d+$/);
    // Live: the page keeps receiving snapshots.
    const seen = Number(await page.locator('body').getAttribute('data-snapshots'));
    await eventually(async () => Number(await page.locator('body').getAttribute('data-snapshots')) > seen, 5_000, 'another snapshot');
    expect(await figure({ state: 'live' })).to.equal('live');

    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(fs.statSync(SCREENSHOT).size).to.be.greaterThan(10_000);
  });
});
