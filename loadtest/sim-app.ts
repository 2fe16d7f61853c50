/**
 * The simulated accelerator in the benches (infra/models/sim-accelerator.mjs: every batch takes a
 * fixed time, SIM_BATCH_MS, spent waiting on a timer rather than computing): its model and app
 * records, and the body of a query. Shared by the replicas and overload benches.
 */
import path from 'node:path';
import { PROJECT_ROOT } from '../shared/process.js';
import type { AdminClient } from '../cli/admin-client.js';

const SIM_MODEL_FILE = path.join(PROJECT_ROOT, 'infra', 'models', 'sim-accelerator.mjs');
const SIM_INPUT_LENGTH = 8;

/** A query's JSON body: the inputs 1..8. */
export const SIM_BODY = JSON.stringify({ input: Array.from({ length: SIM_INPUT_LENGTH }, (_, i) => i + 1) });

/** Registers a model of the simulated accelerator with `batchSize` and `replicas`. */
export function addSimModel(admin: AdminClient, name: string, batchSize: number, replicas = 1): Promise<unknown> {
  return admin.call('add_model', {
    model_name: name, model_version: '1', input_type: 'floats', wrapper: 'js', model_data_path: SIM_MODEL_FILE, batch_size: batchSize, num_replicas: replicas,
  });
}

/** Registers an app served by the simulated model `model`, with an SLO of `sloMs`. */
export function addSimApp(admin: AdminClient, name: string, model: string, sloMs: number): Promise<unknown> {
  return admin.call('add_app', {
    name, input_type: 'floats', input_shape: [SIM_INPUT_LENGTH], latency_slo_micros: sloMs * 1000, candidate_model_names: [model],
  });
}
