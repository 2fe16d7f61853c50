/**
 * Registry changes take effect live (no actor restarts) and survive a restart of every process,
 * nats-server included, because the KV bucket is on disk.
 */
import fs from 'node:fs';
import { expect } from 'chai';
import { startTestNats, stopTestNats, eventually, type TestNats } from '../helpers/nats.js';
import { postJson, startTestStack, stopTestStack, waitForModelAnswer, type TestStack, addJsModel } from '../helpers/stack.js';

describe('registry (real processes)', function () {
  this.timeout(180_000);
  let nats: TestNats | undefined;
  let sys: TestStack | undefined;

  after(async () => {
    await stopTestStack(sys);
    await stopTestNats(nats);
  });

  const pids = (s: TestStack): number[] => s.stack.children.map((c) => c.child.pid!);
  const predictSum = async (s: TestStack, app: string, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> =>
    (await postJson(`${s.stack.ingressUrl}/${app}/predict`, { input: [1, 2, 3], ...extra })).body;

  it('registry - new apps, model versions and links take effect without restarting any actor, and survive a full restart', async () => {
    nats = await startTestNats();
    sys = await startTestStack(nats);
    const before = pids(sys);

    await addJsModel(sys, 'sum', 'sum.mjs');
    await sys.admin.call('add_app', { name: 'calc', input_type: 'doubles', default_output: 'none', latency_slo_micros: 1_000_000 });
    // An app with no links answers with its default output and says why.
    const unlinked = await eventually(async () => {
      const b = await predictSum(sys!, 'calc');
      return b.default === true ? b : undefined;
    }, 10_000, 'calc to exist in the ingress');
    expect(unlinked.output).to.equal('none');
    expect(unlinked.default_explanation).to.match(/no model is linked/);

    await sys.admin.call('add_model_links', { app_name: 'calc', model_names: ['sum'] });
    expect((await waitForModelAnswer(sys, 'calc', { input: [1, 2, 3] })).output).to.deep.equal([6]);

    // A new version becomes current (Clipper's add_model) and is served with no restart.
    await addJsModel(sys, 'sum', 'sum-times-two.mjs', {}, '2');
    await eventually(async () => JSON.stringify((await predictSum(sys!, 'calc')).output) === '[12]', 30_000, 'version 2 to serve');
    expect((await predictSum(sys, 'calc', { version: '2' })).output).to.deep.equal([12]);
    const model = await sys.admin.call<{ is_current_version: boolean }>('get_model', { model_name: 'sum', model_version: '2' });
    expect(model.is_current_version).to.equal(true);

    // Roll back.
    await sys.admin.call('set_model_version', { model_name: 'sum', model_version: '1' });
    await eventually(async () => JSON.stringify((await predictSum(sys!, 'calc')).output) === '[6]', 30_000, 'rollback to version 1');

    // A second app linked to the same model.
    await sys.admin.call('add_app', { name: 'calc2', input_type: 'doubles', latency_slo_micros: 1_000_000, candidate_model_names: ['sum'] });
    expect((await waitForModelAnswer(sys, 'calc2', { input: [4, 4] })).output).to.deep.equal([8]);
    expect(await sys.admin.call('get_linked_models', { app_name: 'calc2' })).to.deep.equal(['sum']);

    expect(pids(sys)).to.deep.equal(before);
    for (const c of sys.stack.children) expect(c.running, c.name).to.equal(true);

    // Restart every process, nats-server included, on the same JetStream store.
    const storeDir = nats.storeDir;
    await stopTestStack(sys);
    sys = undefined;
    await stopTestNats(nats, false);
    nats = await startTestNats(storeDir);
    sys = await startTestStack(nats);
    expect(await sys.admin.call('get_all_applications', {})).to.have.members(['calc', 'calc2']);
    expect(await sys.admin.call('get_all_models', {})).to.have.members(['sum:1', 'sum:2']);
    expect((await waitForModelAnswer(sys, 'calc', { input: [1, 2, 3] })).output).to.deep.equal([6]);
    expect((await waitForModelAnswer(sys, 'calc2', { input: [4, 4] })).output).to.deep.equal([8]);
    expect(fs.existsSync(storeDir)).to.equal(true);
  });

  it('registry - admin API refuses bad and conflicting requests with coded errors', async () => {
    const admin = sys!.admin;
    const cases: [string, unknown, string][] = [
      ['add_app', { name: 'calc', input_type: 'doubles' }, 'CLIPPER_ERR_APP_EXISTS'],
      ['add_app', { name: 'bad name!', input_type: 'doubles' }, 'CLIPPER_ERR_REQUEST_SCHEMA'],
      ['add_app', { name: 'x', input_type: 'complex' }, 'CLIPPER_ERR_REQUEST_SCHEMA'],
      ['add_model', { model_name: 'sum', model_version: '1', input_type: 'doubles', wrapper: 'js', model_data_path: 'x.mjs' }, 'CLIPPER_ERR_MODEL_EXISTS'],
      ['add_model', { model_name: 'm', model_version: '1', input_type: 'doubles', wrapper: 'tensorflow', model_data_path: 'x' }, 'CLIPPER_ERR_REQUEST_SCHEMA'],
      ['set_model_version', { model_name: 'sum', model_version: '9' }, 'CLIPPER_ERR_VERSION_NOT_FOUND'],
      ['set_model_version', { model_name: 'ghost', model_version: '1' }, 'CLIPPER_ERR_MODEL_NOT_FOUND'],
      ['add_model_links', { app_name: 'ghost', model_names: ['sum'] }, 'CLIPPER_ERR_APP_NOT_FOUND'],
      ['add_model_links', { app_name: 'calc', model_names: ['ghost'] }, 'CLIPPER_ERR_MODEL_NOT_FOUND'],
      ['get_application', { name: 'ghost' }, 'CLIPPER_ERR_APP_NOT_FOUND'],
      ['get_model', { model_name: 'sum', model_version: '7' }, 'CLIPPER_ERR_MODEL_NOT_FOUND'],
      ['no_such_op', {}, 'CLIPPER_ERR_ROUTE_NOT_FOUND'],
      ['add_app', { name: 'orphan', input_type: 'doubles', candidate_model_names: ['ghost'] }, 'CLIPPER_ERR_MODEL_NOT_FOUND'],
      ['get_application', { name: 'orphan' }, 'CLIPPER_ERR_APP_NOT_FOUND'],
    ];
    for (const [op, body, code] of cases) {
      try {
        await admin.call(op, body);
        expect.fail(`${op} ${JSON.stringify(body)} should fail with ${code}`);
      } catch (err) {
        expect((err as { code?: string }).code, `${op} ${JSON.stringify(body)}`).to.equal(code);
      }
    }
    const res = await fetch(`${sys!.stack.adminUrl}/admin/get_all_applications`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{oops' });
    expect(res.status).to.equal(400);
  });

  it('registry - deleting links and apps takes effect live', async () => {
    const s = sys!;
    await s.admin.call('delete_model_links', { app_name: 'calc2', model_names: ['sum'] });
    await eventually(async () => (await predictSum(s, 'calc2')).default === true, 10_000, 'calc2 to fall back');
    await s.admin.call('delete_app', { name: 'calc2' });
    await eventually(async () => (await postJson(`${s.stack.ingressUrl}/calc2/predict`, { input: [1] })).status === 404, 10_000, 'calc2 to be gone');
  });
});
