import { expect } from 'chai';
import { AggregatorRegistry } from 'prom-client';
import { CumulativeTotals } from '../../services/ingress/cumulative-totals.js';
import { metricFamily, type MetricFamily } from '../../services/ingress/metric-families.js';
import { schedulerFamilies } from '../../services/ingress/stats-families.js';
import { SCHEDULER_REFUSAL_CAUSES } from '../../shared/protocol.js';
import { parsePrometheusText, sumOf } from '../helpers/prometheus.js';

const tasks = (value: number, model = 'm'): MetricFamily => metricFamily('x_tasks_total', 'tasks', 'counter', [{ value, labels: { model } }]);

describe('cumulative totals', () => {
  it('cumulative totals - grow by what each source counted since its last report', () => {
    const t = new CumulativeTotals();
    t.report('a', [tasks(5)], 0);
    t.report('b', [tasks(3)], 0);
    t.report('a', [tasks(9)], 1);
    expect(t.value('x_tasks_total', { model: 'm' })).to.equal(12);
  });

  it('cumulative totals - a restarted source (new identity, counting from zero) never makes the total fall', () => {
    const t = new CumulativeTotals();
    t.report('a', [tasks(100)], 0);
    t.report('a2', [tasks(4)], 1);
    expect(t.value('x_tasks_total', { model: 'm' })).to.equal(104);
    // A count that falls under the same identity is taken as a restart too.
    t.report('a2', [tasks(1)], 2);
    expect(t.value('x_tasks_total', { model: 'm' })).to.equal(105);
  });

  it('cumulative totals - forgetting a silent source keeps what it counted', () => {
    const t = new CumulativeTotals();
    t.report('a', [tasks(7)], 0);
    t.report('b', [tasks(1)], 1_000);
    t.forget(500);
    expect(t.sourceCount).to.equal(1);
    expect(t.value('x_tasks_total', { model: 'm' })).to.equal(8);
  });

  it('cumulative totals - ignore gauges and keep histograms per series', () => {
    const t = new CumulativeTotals();
    const hist = (count: number, sum: number): MetricFamily => metricFamily('x_seconds', 'h', 'histogram', [
      { metricName: 'x_seconds_bucket', labels: { le: 0.1, model: 'm' }, value: count },
      { metricName: 'x_seconds_bucket', labels: { le: '+Inf', model: 'm' }, value: count },
      { metricName: 'x_seconds_sum', labels: { model: 'm' }, value: sum },
      { metricName: 'x_seconds_count', labels: { model: 'm' }, value: count },
    ]);
    t.report('a', [hist(2, 0.05), metricFamily('x_queued', 'q', 'gauge', [{ value: 9, labels: {} }])], 0);
    t.report('b', [hist(1, 0.01)], 0);
    expect(t.sum('x_seconds_count')).to.equal(3);
    expect(t.sum('x_seconds_sum')).to.be.closeTo(0.06, 1e-12);
    expect(t.value('x_queued', {})).to.equal(0);
    expect(t.families().map((f) => f.name)).to.deep.equal(['x_seconds']);
  });

  it('cumulative totals - their families print as Prometheus text through prom-client', async () => {
    const t = new CumulativeTotals();
    t.report('a', [tasks(2, 'p'), tasks(3, 'q')], 0);
    const text = await AggregatorRegistry.aggregate([t.families()]).metrics();
    const e = parsePrometheusText(text);
    expect(e.types.get('x_tasks_total')).to.equal('counter');
    expect(sumOf(e, 'x_tasks_total', { model: 'p' })).to.equal(2);
    expect(sumOf(e, 'x_tasks_total', { model: 'q' })).to.equal(3);
  });
});

describe('scheduler stats as metric families', () => {
  const rejected = (families: MetricFamily[]) => families.find((f) => f.name === 'clipper_scheduler_rejected_total')!.values;

  it('scheduler refusals - one series per cause, labelled with the model', () => {
    const byCause = { queue_full: 1, would_be_late: 2, arrived_late: 3, waited_too_long: 4, shutting_down: 0 };
    const values = rejected(schedulerFamilies({ rejected: 10, rejected_by: byCause }, 'm', '2'));
    expect(values.map((v) => [v.labels.cause, v.value])).to.deep.equal(SCHEDULER_REFUSAL_CAUSES.map((c) => [c, byCause[c]]));
    for (const v of values) expect(v.labels).to.include({ model: 'm', version: '2' });
  });

  it('scheduler refusals - a scheduler that does not give causes counts under cause="unknown"', () => {
    expect(rejected(schedulerFamilies({ rejected: 7 }, 'm', '1')).map((v) => [v.labels.cause, v.value])).to.deep.equal([['unknown', 7]]);
  });
});
