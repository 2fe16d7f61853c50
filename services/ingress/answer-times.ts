/**
 * How soon a model answers a query once the ingress has read it, per app, and the edge rule that goes
 * with it (`tooLittleLeft`): a query whose wait in front of the ingress (its `X-Request-Start` stamp)
 * left it less time than its model's answers take is refused at once, retryable, instead of being
 * forwarded to miss its deadline. Pure logic, unit-tested.
 *
 * *Why:* such a query is refused by the model's scheduler all the same (it cannot finish in time), but
 * that refusal travels back through NATS and a busy ingress, and when it comes after the deadline the
 * client has had the default output instead: a time-out, not an early refusal. Measured at twice the
 * capacity on a 2-vCPU VM (`overload --capacity 1700`, 3400 HTTP queries/s offered, the generator on
 * the same vCPUs): of 212 default answers, 152 were queries whose scheduler had refused them and whose
 * refusal came after the deadline; they had been forwarded with 4 ms of their budget left (median;
 * 0.8 ms at P10, 8 ms at P80), where every query a model answered had had 9.9 ms or more (12.4 ms at
 * P1).
 *
 * The estimate is the 10th percentile of the time from the read to a model's answer: a query left
 * less than that is answered in time less than one time in ten. It counts from 20 answers on, and
 * only while it is under the app's whole budget: a model slower than that is not helped by refusing
 * the queries that waited (they get the default output as before). Only answers of one model alone
 * teach it: an ensemble's answer waits for its slowest model, or (anytime) for the deadline, which
 * says nothing of how soon a model could answer; an ensemble app's queries are never refused so.
 */
import type { PolicyAnswer } from '../../shared/protocol.js';
import { RunningQuantile } from '../../shared/running-quantile.js';

/** Model answers of an app before its estimate counts. */
export const ANSWER_TIME_MIN_SAMPLES = 20;

/** The quantile of the answer time that a query must have left. */
const ANSWER_TIME_QUANTILE = 0.1;

/** The estimate's step per answer, ms (at 1000 answers a second it moves up to ~45 ms a second). */
const ANSWER_TIME_STEP_MS = 0.05;

export class AnswerTimes {
  private readonly apps = new Map<string, RunningQuantile>();

  /** A query of `app` was answered `ms` after the ingress read it; counts when one model alone answered it. */
  observe(app: string, answer: Pick<PolicyAnswer, 'default' | 'models' | 'missing'>, ms: number): void {
    if (answer.default || answer.models?.length !== 1 || (answer.missing?.length ?? 0) > 0) return;
    let q = this.apps.get(app);
    if (!q) this.apps.set(app, (q = new RunningQuantile(ANSWER_TIME_QUANTILE, ANSWER_TIME_STEP_MS, { startAtFirst: true })));
    q.observe(ms);
  }

  /** The 10th percentile of `app`'s answer time, ms; undefined before 20 answers. */
  fastestMs(app: string): number | undefined {
    const q = this.apps.get(app);
    return q && q.count >= ANSWER_TIME_MIN_SAMPLES ? q.known : undefined;
  }
}

/**
 * Whether a query that waited `waitedMs` before the ingress read it, out of `budgetMs` in all, has
 * less left than its model's answers take (`answerMs`, AnswerTimes.fastestMs). Never when that is
 * the whole budget or more.
 */
export function tooLittleLeft(waitedMs: number, budgetMs: number, answerMs: number): boolean {
  return answerMs < budgetMs && budgetMs - waitedMs < answerMs;
}
