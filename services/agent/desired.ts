/** What should run, from the registry: a scheduler and `num_replicas` workers per deployed model version. */
import type { ModelRecord } from '../../shared/registry.js';
import type { DesiredProcess } from './types.js';

export function desiredProcesses(deployed: readonly ModelRecord[]): DesiredProcess[] {
  const out: DesiredProcess[] = [];
  for (const m of deployed) {
    const base = ['--model', m.name, '--version', m.version];
    out.push({ key: `scheduler.${m.name}.${m.version}`, actor: 'scheduler', args: base });
    for (let r = 0; r < m.num_replicas; r++) {
      out.push({ key: `worker.${m.name}.${m.version}.${r}`, actor: 'worker', args: [...base, '--replica', String(r)] });
    }
  }
  return out;
}
