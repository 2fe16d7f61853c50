/**
 * Whether less traffic would have prevented a scheduler's overload refusal (ClipperError.sheddable,
 * the `Clipper-Sheddable` header): the ingress's load shedder learns from those refusals only. Pure
 * logic, unit-tested.
 *
 * A full queue, and a task that arrived too late to be served (a backlog upstream: in front of the
 * ingress, in the ingress or a policy, in NATS), always. A task that admission expected to be late,
 * or that waited in the queue too long, when the queue holds at least what the replicas take in their
 * next batches: a backlog. With a shorter queue the task was at most a batch away from its turn, and
 * the model's latency varying against the lateness margin was the cause, which shedding at the edge
 * does not help. On a busy 2-vCPU VM the scheduler refused 10–25 % of the tasks so at a fifth of the
 * model's capacity, and the shedder, learning from every refusal, held back 70–89 % of 1000 queries a
 * second of which the model could serve ~750.
 *
 * (Also counting a model none of whose replicas had waited for work for 50 ms as backlogged, to catch
 * a machine whose CPU, not the queue, is short, did no better: at 1200 queries/s against the VM's
 * ~600/s, 549–859 answers a second in four runs against 662–789 with the queue alone.)
 */
import type { SchedulerRefusalCause } from '../../shared/protocol.js';

export interface RefusalContext {
  /** Tasks in the queue when the task was refused. */
  queued: number;
  /** Tasks the replicas take in their next batches (each one's batch size limit times its batches in flight). */
  nextBatches: number;
}

/** True when a backlog caused the refusal, false when not; undefined for a cause that is not overload. */
export function isSheddable(cause: SchedulerRefusalCause, ctx: RefusalContext): boolean | undefined {
  switch (cause) {
    case 'queue_full':
    case 'arrived_late':
      return true;
    case 'would_be_late':
    case 'waited_too_long':
      return ctx.queued >= ctx.nextBatches;
    default:
      return undefined;
  }
}
