import { expect } from 'chai';
import { AggregatorRegistry } from 'prom-client';
import { CumulativeTotals } from '../../services/ingress/cumulative-totals.js';
import { metricFamily, type MetricFamily } from '../../services/ingress/metric-families.js';
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
