/**
 * Whether less traffic would have prevented a scheduler's overload refusal (ClipperError.sheddable,
 * the `Clipper-Sheddable` header): the ingress's load shedder learns from those refusals only. Pure
 * logic, unit-tested.
 *
 * A full queue, and a task that arrived too late to be served (a backlog upstream: in front of the
 * ingress, in the ingress or a policy, in NATS), always. A task that admission expected to be late,
 * or that waited in the queue too long, when the queue holds at least what the replicas take in their
 * next batches (a backlog here), or when the task took much longer than usual to reach the scheduler
 * (`delayedUpstream`: a backlog upstream, short of arriving too late). Otherwise the task was at most
 * a batch away from its turn and on time, and the model's latency varying against the lateness
 * margin was the cause, which shedding at the edge does not help. On a busy 2-vCPU VM the scheduler
 * refused 10–25 % of the tasks so at a fifth of the model's capacity, and the shedder, learning from
 * every refusal, held back 70–89 % of 1000 queries a second of which the model could serve ~750.
 *
 * The upstream part is for a machine whose CPU, not the model's queue, is short: at twice its
 * capacity (2500 queries/s on a 2-vCPU Zen 4 VM) the ingress, the load generator and the worker
 * share the cores, the queue stays under a batch, and tasks reach the scheduler after 6–7 ms
 * (median) instead of the usual 2. Learning from the queue alone, the edge let through so much that
 * the scheduler refused 40 % of what reached it (1834 and 1977 answers a second in two runs); with
 * the delayed tasks too, 2052 and 2207; from every refusal, 1915 and 1907.
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
  /** How long the task took to reach the scheduler from the start of its SLO clock, ms (unknown without its budget). */
  upstreamMs?: number;
  /** What tasks usually take to reach it (the lower quartile, a shared/running-quantile.ts RunningQuantile), ms; unknown before any. */
  usualUpstreamMs?: number;
  /** Admitted tasks `usualUpstreamMs` was learnt from (0 when not given). */
  upstreamSamples?: number;
}

/** Slack over twice the usual time to reach the scheduler before a task counts as delayed by a backlog upstream, ms. */
export const UPSTREAM_SLACK_MS = 2;

/**
 * Admitted tasks the usual trip is learnt from before it counts (until then the queue alone decides):
 * one or two trips say nothing of what is usual, and a slow one on a busy machine would otherwise
 * mark the next short-queue refusal sheddable.
 */
export const UPSTREAM_MIN_SAMPLES = 20;

/** True when the task took much longer than usual to reach the scheduler (a backlog upstream), once the usual is known. */
export function delayedUpstream(ctx: RefusalContext): boolean {
  return ctx.upstreamMs !== undefined && ctx.usualUpstreamMs !== undefined && (ctx.upstreamSamples ?? 0) >= UPSTREAM_MIN_SAMPLES
    && ctx.upstreamMs >= 2 * ctx.usualUpstreamMs + UPSTREAM_SLACK_MS;
}

/** True when a backlog caused the refusal, false when not; undefined for a cause that is not overload. */
export function isSheddable(cause: SchedulerRefusalCause, ctx: RefusalContext): boolean | undefined {
  switch (cause) {
    case 'queue_full':
    case 'arrived_late':
      return true;
    case 'would_be_late':
    case 'waited_too_long':
      return ctx.queued >= ctx.nextBatches || delayedUpstream(ctx);
    default:
      return undefined;
  }
}
