/**
 * The durable feedback path's JetStream resources, created or updated idempotently by whichever
 * actor needs them (the ingress writes FEEDBACK; the policy shards read it and write OUTCOMES):
 *
 *   <P>_FEEDBACK   subjects <p>.feedback.*.*   every acknowledged observation (FeedbackRecord)
 *   <P>_OUTCOMES   subjects <p>.outcome.*.*    each observation with its models' outputs (OutcomeRecord)
 *   <p>-policy-state  KV bucket                 snapshots of the policy shards' state
 *
 * Both streams use file storage and the same limits (max age, max bytes; the oldest messages go
 * first). OUTCOMES deduplicates on the msgID `<shard>-<feedback_seq>` within its duplicate window.
 */
import { DiscardPolicy, RetentionPolicy, StorageType, nanos, type JetStreamManager, type KV, type NatsConnection, type StreamConfig } from 'nats';
import { ClipperError } from './errors.js';
import type { Subjects } from './subjects.js';

/** Retention of the feedback streams. */
export interface FeedbackRetention {
  /** Messages older than this are dropped (seconds; 0 keeps them forever). */
  feedbackMaxAgeS: number;
  /** The oldest messages are dropped beyond this many bytes per stream (-1: no limit). */
  feedbackMaxBytes: number;
}

/** Config properties of the retention, shared by the ingress and policy schemas. */
export const feedbackRetentionConfigProperties = {
  feedbackMaxAgeS: { type: 'integer', minimum: 0, default: 30 * 24 * 3600 },
  feedbackMaxBytes: { type: 'integer', minimum: -1, default: 1024 ** 3 },
} as const;

/** Duplicate window of OUTCOMES: a re-publish after a crash within it is dropped by the server. */
const OUTCOME_DUPLICATE_WINDOW_MS = 10 * 60_000;

function streamConfigs(subjects: Subjects, r: FeedbackRetention): Partial<StreamConfig>[] {
  const common = {
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: nanos(r.feedbackMaxAgeS * 1000),
    max_bytes: r.feedbackMaxBytes,
    num_replicas: 1,
  };
  return [
    { ...common, name: subjects.feedbackStream(), subjects: [subjects.feedbackRecords()], description: 'clipper: stored feedback observations' },
    { ...common, name: subjects.outcomeStream(), subjects: [subjects.outcomes()], duplicate_window: nanos(OUTCOME_DUPLICATE_WINDOW_MS), description: 'clipper: feedback observations with their model outputs' },
  ];
}

/**
 * Creates the FEEDBACK and OUTCOMES streams, or brings an existing one's limits to the configured
 * ones. A stream of that name on other subjects (another prefix that maps to the same name) is
 * refused rather than taken over.
 */
export async function ensureFeedbackStreams(jsm: JetStreamManager, subjects: Subjects, retention: FeedbackRetention): Promise<void> {
  for (const cfg of streamConfigs(subjects, retention)) {
    const name = cfg.name!;
    let existing;
    try {
      existing = await jsm.streams.info(name);
    } catch (err) {
      if (!/stream not found/i.test((err as Error).message)) throw err;
    }
    if (!existing) {
      try {
        await jsm.streams.add(cfg);
        continue;
      } catch (err) {
        // Another actor created it at the same moment: fall through to the check below.
        existing = await jsm.streams.info(name).catch(() => undefined);
        if (!existing) throw err;
      }
    }
    const have = existing.config;
    if (JSON.stringify([...have.subjects].sort()) !== JSON.stringify(cfg.subjects)) {
      throw new ClipperError('CLIPPER_ERR_CONFIG_INVALID', `stream ${name} exists with subjects ${JSON.stringify(have.subjects)}, not ${JSON.stringify(cfg.subjects)}`);
    }
    if (have.max_age !== cfg.max_age || have.max_bytes !== cfg.max_bytes || (cfg.duplicate_window !== undefined && have.duplicate_window !== cfg.duplicate_window)) {
      await jsm.streams.update(name, { ...have, max_age: cfg.max_age!, max_bytes: cfg.max_bytes!, ...(cfg.duplicate_window !== undefined ? { duplicate_window: cfg.duplicate_window } : {}) });
    }
  }
}

/** The KV bucket of policy state snapshots (file storage, last value only). */
export function openPolicyStateBucket(nc: NatsConnection, subjects: Subjects): Promise<KV> {
  return nc.jetstream().views.kv(subjects.policyStateBucket(), { storage: StorageType.File, history: 1 });
}

/** Message counts of a stream per subject matching `filter` (a wildcard), summed. */
export async function countMessages(jsm: JetStreamManager, stream: string, filter: string): Promise<number> {
  const info = await jsm.streams.info(stream, { subjects_filter: filter });
  return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
}
