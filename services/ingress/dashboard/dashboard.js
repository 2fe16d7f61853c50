// The Clipper dashboard: one StatusSnapshot per second from GET /dashboard/events (server-sent
// events), kept for two minutes and drawn as small SVG line charts. No build step, no libraries.
// Every figure is also text with data-metric / data-app / data-model attributes, for people and tests.
'use strict';

const HISTORY_MS = 120_000;
const MIN_SPAN_MS = 10_000;
const COLORS = ['#3b6fd8', '#d9534f', '#1f9d55', '#d98a00', '#8e44ad', '#16a2b8'];
const SVG_W = 300;
const SVG_H = 120;
const PAD = { l: 34, r: 6, t: 8, b: 14 };

/** series key → [{t, v}] */
const history = new Map();
/** model key → the previous snapshot's cumulative figures, for per-interval means */
const previous = new Map();
/** model key → the latest per-interval figures (kept while an interval has no batches) */
const lastInterval = new Map();
let lastPolled = 0;

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const attrs = (o) => Object.entries(o).map(([k, v]) => `data-${k}="${esc(v)}"`).join(' ');

/** A number as text: '–' for none, fewer decimals as it grows. */
function fmt(v, digits) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (digits !== undefined) return v.toFixed(digits);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function figure(label, value, unit, data) {
  return `<span class="figure"><span class="label">${esc(label)}</span><span class="value" ${attrs(data)}>${esc(value)}</span>${unit ? `<span class="unit">${esc(unit)}</span>` : ''}</span>`;
}

function push(key, t, v) {
  let h = history.get(key);
  if (!h) history.set(key, (h = []));
  h.push({ t, v: v === null || v === undefined || !Number.isFinite(v) ? null : v });
  while (h.length > 0 && h[0].t < t - HISTORY_MS) h.shift();
}

/**
 * An SVG line chart of the given series since the page opened, over two minutes at most (ten
 * seconds at least); `lines` are horizontal references such as the SLO.
 */
function chart(title, series, opts = {}) {
  const now = Date.now();
  let first = now;
  for (const s of series) first = Math.min(first, history.get(s.key)?.[0]?.t ?? now);
  const spanMs = Math.min(HISTORY_MS, Math.max(MIN_SPAN_MS, now - first));
  const x = (t) => PAD.l + ((t - (now - spanMs)) / spanMs) * (SVG_W - PAD.l - PAD.r);
  let max = opts.max ?? 0;
  for (const s of series) for (const p of history.get(s.key) ?? []) if (p.v !== null && p.v > max) max = p.v;
  for (const l of opts.lines ?? []) max = Math.max(max, l.value * 1.15);
  if (!(max > 0)) max = 1;
  const y = (v) => SVG_H - PAD.b - (v / max) * (SVG_H - PAD.t - PAD.b);
  const paths = series.map((s, i) => {
    let d = '';
    let pen = false;
    for (const p of history.get(s.key) ?? []) {
      if (p.v === null) { pen = false; continue; }
      // A lone point still shows: a zero-length segment with round caps is a dot.
      d += pen ? `L${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}` : `M${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}l0.01,0`;
      pen = true;
    }
    return `<path d="${d}" fill="none" stroke="${s.color ?? COLORS[i % COLORS.length]}" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round"/>`;
  }).join('');
  const refs = (opts.lines ?? []).map((l) => `<line class="slo" x1="${PAD.l}" x2="${SVG_W - PAD.r}" y1="${y(l.value)}" y2="${y(l.value)}"/><text x="${SVG_W - PAD.r - 2}" y="${y(l.value) - 3}" text-anchor="end">${esc(l.label)}</text>`).join('');
  const legend = series.map((s, i) => `<span><span class="swatch" style="background:${s.color ?? COLORS[i % COLORS.length]}"></span>${esc(s.label)}</span>`).join('');
  return `<div><div class="chart-title">${esc(title)}</div>
<svg class="chart" viewBox="0 0 ${SVG_W} ${SVG_H}" role="img" aria-label="${esc(title)}">
<line class="grid" x1="${PAD.l}" x2="${SVG_W - PAD.r}" y1="${y(max)}" y2="${y(max)}"/><line class="grid" x1="${PAD.l}" x2="${SVG_W - PAD.r}" y1="${y(0)}" y2="${y(0)}"/>
<text x="${PAD.l - 4}" y="${y(max) + 4}" text-anchor="end">${fmt(max)}</text><text x="${PAD.l - 4}" y="${y(0)}" text-anchor="end">0</text>
<text x="${PAD.l}" y="${SVG_H - 3}">−${spanMs >= HISTORY_MS ? '2 min' : `${Math.round(spanMs / 1000)} s`}</text><text x="${SVG_W - PAD.r}" y="${SVG_H - 3}" text-anchor="end">now</text>
${refs}${paths}</svg><div class="legend">${legend}</div></div>`;
}

/** Per-interval means of a model from two snapshots' cumulative sums and counts. */
function intervalFigures(m, key, polledChanged) {
  const prev = previous.get(key);
  const cacheHits = m.cache ? m.cache.hits : 0;
  const cacheLookups = m.cache ? m.cache.lookups : 0;
  const mean = (sum, count, psum, pcount, scale = 1) => (count - pcount > 0 ? ((sum - psum) / (count - pcount)) * scale : null);
  let f = lastInterval.get(key);
  if (!prev) {
    // First sight: the means since the start stand in until a full interval has passed.
    f = {
      batch: m.batch_size_count > 0 ? m.batch_size_sum / m.batch_size_count : null,
      queueMs: m.queue_seconds_count > 0 ? (m.queue_seconds_sum / m.queue_seconds_count) * 1000 : null,
      computeMs: m.compute_seconds_count > 0 ? (m.compute_seconds_sum / m.compute_seconds_count) * 1000 : null,
      hitRate: m.cache ? m.cache.hit_rate : null,
      fresh: { batch: null, queueMs: null, computeMs: null, hitRate: null },
    };
  } else if (polledChanged) {
    const fresh = {
      batch: mean(m.batch_size_sum, m.batch_size_count, prev.batch_size_sum, prev.batch_size_count),
      queueMs: mean(m.queue_seconds_sum, m.queue_seconds_count, prev.queue_seconds_sum, prev.queue_seconds_count, 1000),
      computeMs: mean(m.compute_seconds_sum, m.compute_seconds_count, prev.compute_seconds_sum, prev.compute_seconds_count, 1000),
      hitRate: cacheLookups - prev.cacheLookups > 0 ? (cacheHits - prev.cacheHits) / (cacheLookups - prev.cacheLookups) : null,
    };
    f = {
      batch: fresh.batch ?? f?.batch ?? null, queueMs: fresh.queueMs ?? f?.queueMs ?? null, computeMs: fresh.computeMs ?? f?.computeMs ?? null,
      hitRate: fresh.hitRate ?? f?.hitRate ?? null, fresh,
    };
  }
  if (!prev || polledChanged) previous.set(key, { ...m, cacheHits, cacheLookups });
  lastInterval.set(key, f);
  return f;
}

function renderApps(snap, t) {
  const el = document.getElementById('apps');
  if (snap.apps.length === 0) { el.innerHTML = '<p class="muted">no application yet</p>'; return; }
  el.innerHTML = snap.apps.map((a) => {
    push(`app:${a.name}:qps`, t, a.answered_per_s);
    push(`app:${a.name}:p50`, t, a.p50_ms);
    push(`app:${a.name}:p99`, t, a.p99_ms);
    const d = (metric) => ({ metric, app: a.name });
    return `<div class="card" ${attrs({ app: a.name })}>
<h3>${esc(a.name)} <span class="muted">${esc(a.policy)} · SLO ${fmt(a.slo_ms)} ms · ${esc(a.models.join(', ') || 'no model linked')}</span></h3>
<div class="figures">
${figure('requests', String(a.requests_total), '', d('requests'))}
${figure('throughput', fmt(a.answered_per_s), 'q/s', d('qps'))}
${figure('P50', fmt(a.p50_ms), 'ms', d('p50'))}
${figure('P99', fmt(a.p99_ms), 'ms', d('p99'))}
${figure('SLO met (1 min)', a.slo_attainment === null ? '–' : fmt(a.slo_attainment * 100, 1), '%', d('slo-attainment'))}
${figure('defaults', String(a.requests.default), '', d('defaults'))}
${figure('refused', String(a.requests.refused), '', d('refused'))}
${figure('errors', String(a.requests.error), '', d('errors'))}
${a.requests.forwarded ? figure('direct (NATS)', String(a.requests.forwarded), '', d('forwarded')) : ''}
</div>
<div class="charts">
${chart('throughput (answered queries/s)', [{ key: `app:${a.name}:qps`, label: 'q/s' }])}
${chart('latency (ms)', [{ key: `app:${a.name}:p50`, label: 'P50', color: COLORS[0] }, { key: `app:${a.name}:p99`, label: 'P99', color: COLORS[3] }], { lines: [{ value: a.slo_ms, label: `SLO ${fmt(a.slo_ms)} ms` }] })}
</div></div>`;
  }).join('');
}

function renderModels(snap, t, polledChanged) {
  const el = document.getElementById('models');
  if (snap.models.length === 0) { el.innerHTML = '<p class="muted">no model yet</p>'; return; }
  el.innerHTML = snap.models.map((m) => {
    const key = `${m.name}:${m.version}`;
    const f = intervalFigures(m, key, polledChanged);
    const limits = m.replicas.filter((r) => r.state === 'up' && r.batch_size !== null).map((r) => r.batch_size);
    const limit = limits.length ? Math.max(...limits) : null;
    if (polledChanged || !history.has(`model:${key}:batch`)) {
      push(`model:${key}:batch`, t, f.fresh.batch);
      push(`model:${key}:limit`, t, limit);
      push(`model:${key}:queue`, t, f.fresh.queueMs);
      push(`model:${key}:compute`, t, f.fresh.computeMs);
      push(`model:${key}:hit`, t, f.fresh.hitRate === null ? null : f.fresh.hitRate * 100);
    }
    const d = (metric) => ({ metric, model: m.name, version: m.version });
    const charts = [
      chart('batch size (mean per interval, sizer limit)', [{ key: `model:${key}:batch`, label: 'mean batch' }, { key: `model:${key}:limit`, label: 'limit', color: COLORS[2] }]),
      chart('queue wait vs compute (mean ms per interval)', [{ key: `model:${key}:queue`, label: 'queue', color: COLORS[4] }, { key: `model:${key}:compute`, label: 'compute', color: COLORS[1] }]),
    ];
    if (m.cache) charts.push(chart('cache hit rate (%)', [{ key: `model:${key}:hit`, label: 'hits', color: COLORS[2] }], { max: 100 }));
    return `<div class="card" ${attrs({ model: m.name, version: m.version })}>
<h3>${esc(m.name)} <span class="muted">version ${esc(m.version)}</span></h3>
<div class="figures">
${figure('replicas', `${m.replicas_ready}/${m.replicas_desired}`, '', d('replicas'))}
${figure('queued', String(m.queued), '', d('queued'))}
${figure('batch size', fmt(f.batch), '', d('batch-size'))}
${figure('limit', limit === null ? '–' : String(limit), '', d('batch-size-limit'))}
${figure('queue', fmt(f.queueMs), 'ms', d('queue-ms'))}
${figure('compute', fmt(f.computeMs), 'ms', d('compute-ms'))}
${figure('tasks', String(m.tasks_total), '', d('tasks'))}
${m.cache ? figure('cache hits', m.cache.hit_rate === null ? '–' : fmt(m.cache.hit_rate * 100, 1), '%', d('hit-rate')) : ''}
</div>
<div class="charts">${charts.join('')}</div></div>`;
  }).join('');
}

function renderReplicas(snap) {
  const rows = snap.models.flatMap((m) => m.replicas.map((r) => `<tr ${attrs({ model: m.name, version: m.version, replica: r.replica })}>
<td>${esc(m.name)}</td><td>${esc(m.version)}</td><td>${esc(r.replica)}</td>
<td><span class="badge" data-state="${esc(r.state)}" ${attrs({ metric: 'replica-state', model: m.name, replica: r.replica })}>${esc(r.state)}</span></td>
<td>${r.batch_size === null ? '–' : r.batch_size}</td><td>${r.in_flight}</td></tr>`));
  document.querySelector('#replicas tbody').innerHTML = rows.join('') || '<tr><td colspan="6" class="muted">no replica yet</td></tr>';
}

function renderWeights(snap) {
  const el = document.getElementById('weights');
  if (snap.weights.length === 0) { el.innerHTML = '<p class="muted">no stateful policy yet</p>'; return; }
  const groups = new Map();
  for (const w of snap.weights) {
    const k = `${w.app}\u0000${w.shard}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(w);
  }
  const shards = new Set(snap.weights.map((w) => w.shard)).size;
  el.innerHTML = [...groups.values()].map((ws) => `<div class="weights-app"><strong>${esc(ws[0].app)}</strong>${shards > 1 ? ` <span class="muted">shard ${esc(ws[0].shard)}</span>` : ''}
${ws.map((w) => `<div class="bar"><span>${esc(w.model)}</span><span class="track"><span class="fill" style="display:block;width:${(w.weight * 100).toFixed(1)}%"></span></span>
<span class="value" ${attrs({ metric: 'weight', app: w.app, model: w.model, shard: w.shard })}>${fmt(w.weight, 3)}</span></div>`).join('')}</div>`).join('');
}

function render(snap) {
  const t = snap.ts_unix_ms;
  const polledChanged = snap.stats_polled_unix_ms !== lastPolled;
  lastPolled = snap.stats_polled_unix_ms;
  renderApps(snap, t);
  renderModels(snap, t, polledChanged);
  renderReplicas(snap);
  renderWeights(snap);
  document.getElementById('updated').textContent = `updated ${new Date(t).toLocaleTimeString()}`;
  document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots ?? 0) + 1);
}

function connect() {
  const badge = document.getElementById('connection');
  const events = new EventSource('/dashboard/events');
  events.onopen = () => { badge.dataset.state = 'live'; badge.textContent = 'live'; };
  events.onerror = () => { badge.dataset.state = 'offline'; badge.textContent = 'reconnecting…'; };
  events.onmessage = (e) => {
    try {
      render(JSON.parse(e.data));
    } catch (err) {
      console.error('dashboard: bad snapshot', err);
    }
  };
}

connect();
