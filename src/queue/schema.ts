// The queue database's own tables (queue mode: `batch run --queue`, `worker`). One database (or
// one PostgreSQL schema) holds one batch. pg-boss keeps its job tables in its own schema
// (BOSS_SCHEMA); the tables below hold what pg-boss has no answer for: who holds an account
// (a lease with an epoch), each account's state snapshot, the sealed credentials and the shared
// Google budget. Every time is PostgreSQL's own clock (now()), so machines with skewed clocks
// agree on when a lease expires.

export const SCHEMA = 'gallery_bridge';
export const BOSS_SCHEMA = 'gallery_bridge_boss';
/**
 * pg-boss queues whose jobs are accounts (singletonKey = slug): one per source and destination
 * kind, `gb-accounts-SOURCE--DESTINATION`, so that a worker fetches only from queues whose
 * providers have room under the batch's limits (see worker.ts).
 */
export const QUEUE_PREFIX = 'gb-accounts-';
/**
 * Raised whenever a table changes shape, with a step in STEPS that brings an older database to
 * it; a newer database is refused by an older tool.
 */
export const SCHEMA_VERSION = 2;

export const DDL = `
CREATE SCHEMA IF NOT EXISTS ${SCHEMA};

-- Settings of the batch and of the database: schema_version, manifest (JSON: path, sha256,
-- loaded_at), settings (JSON: the batch run's options every worker follows, see QueueSettings in
-- load.ts), notes (JSON array: the plan's lines, as batch status shows them), key_check.
CREATE TABLE IF NOT EXISTS ${SCHEMA}.meta (key text PRIMARY KEY, value text NOT NULL);

-- One row per manifest account: its settings, where it stands (status as in the single-machine
-- batch: waiting | running | done | paused | waiting-quota | removed, with reason and todo), and
-- its progress as last reported by the worker holding it (items/done_items/bytes/done_bytes,
-- progress_at). A row is only written by the worker holding the account's lease.
CREATE TABLE IF NOT EXISTS ${SCHEMA}.accounts (
  slug text PRIMARY KEY,
  account text NOT NULL UNIQUE,
  line integer NOT NULL,
  source text NOT NULL,
  destination text NOT NULL,
  source_account text NOT NULL,
  destination_account text NOT NULL,
  delete_source boolean,
  delete_evidence text,
  priority integer NOT NULL DEFAULT 0,
  status text NOT NULL DEFAULT 'waiting',
  reason text,
  todo text,
  last_error text,
  runs integer NOT NULL DEFAULT 0,
  started_at timestamptz,
  ended_at timestamptz,
  exit_code integer,
  est_items bigint,
  est_bytes bigint,
  items bigint,
  done_items bigint,
  bytes bigint,
  done_bytes bigint,
  progress_at timestamptz,
  planned_finish timestamptz,
  makes_deadline boolean
);

-- Every worker process that ever joined: heartbeat_at is renewed with its leases; stopped_at is
-- set when it ends cleanly (a killed worker keeps a stale heartbeat).
CREATE TABLE IF NOT EXISTS ${SCHEMA}.workers (
  name text PRIMARY KEY,
  host text NOT NULL,
  pid integer NOT NULL,
  slots integer NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  stopped_at timestamptz
);

-- Who holds an account. epoch rises by one at every acquisition; a worker's renewal, snapshot and
-- every fence check name (slug, epoch, worker) and fail once the row moved on. A lease is live
-- while released_at IS NULL AND expires_at > now(). job_id is the pg-boss job the holder runs;
-- reaped_at is set when a worker noticed the expiry and failed that job so that pg-boss retries it.
CREATE TABLE IF NOT EXISTS ${SCHEMA}.leases (
  slug text PRIMARY KEY REFERENCES ${SCHEMA}.accounts(slug),
  epoch bigint NOT NULL,
  worker text NOT NULL,
  job_id text,
  acquired_at timestamptz NOT NULL DEFAULT now(),
  renewed_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  released_at timestamptz,
  reaped_at timestamptz
);

-- Every takeover: an account acquired while the previous holder's lease had expired unreleased.
CREATE TABLE IF NOT EXISTS ${SCHEMA}.takeovers (
  id bigserial PRIMARY KEY,
  slug text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  old_worker text NOT NULL,
  old_epoch bigint NOT NULL,
  new_worker text NOT NULL,
  new_epoch bigint NOT NULL,
  reason text NOT NULL
);

-- Each account's SQLite state store, gzip of better-sqlite3 serialize(), written only under the
-- lease at its epoch (epoch says who wrote it), restored by the next holder.
CREATE TABLE IF NOT EXISTS ${SCHEMA}.snapshots (
  slug text PRIMARY KEY REFERENCES ${SCHEMA}.accounts(slug),
  epoch bigint NOT NULL,
  saved_at timestamptz NOT NULL DEFAULT now(),
  size bigint NOT NULL,
  sqlite bytea NOT NULL
);

-- Credential files (GALLERY_BRIDGE_HOME/credentials/PROVIDER/FILE) sealed with AES-256-GCM under
-- the workers' key: sealed = 12-byte IV, 16-byte tag, ciphertext. Never plain text.
CREATE TABLE IF NOT EXISTS ${SCHEMA}.credentials (
  provider text NOT NULL,
  file text NOT NULL,
  sealed bytea NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (provider, file)
);

-- Google's daily request budget per project (OAuth client) and Pacific-time day. Workers reserve
-- blocks with UPDATE ... SET used = used + n WHERE used + n <= cap and give back what they did not
-- use; spent is set when Google answered the daily-quota 429 (the day is over for every worker).
CREATE TABLE IF NOT EXISTS ${SCHEMA}.google_budget (
  project text NOT NULL,
  day text NOT NULL,
  cap integer NOT NULL,
  used integer NOT NULL DEFAULT 0,
  spent boolean NOT NULL DEFAULT false,
  spent_at timestamptz,
  PRIMARY KEY (project, day)
);

-- Progress samples for the charts, as the single-machine batch keeps them.
CREATE TABLE IF NOT EXISTS ${SCHEMA}.samples (
  slug text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  done_items bigint NOT NULL,
  done_bytes bigint NOT NULL,
  total_items bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_slug ON ${SCHEMA}.samples(slug, at);
`;

/**
 * What each schema version adds to the one before (DDL is version 1). A database at version N
 * gets every step above N, in order, in the same transaction as its new schema_version; each
 * step is idempotent, so two machines upgrading at once (serialized by a lock) do no harm.
 */
export const STEPS: ReadonlyArray<{ version: number; sql: string }> = [
  {
    version: 2,
    sql: `
-- Every deletion at a source, recorded under the account's lease BEFORE the source is asked
-- (intent_at), with the proof it rests on: the SHA-1/SHA-256 and size of the bytes read and
-- hashed, and the destination's evidence. done_at and response are set once the source answered
-- (best effort: a row without done_at is a deletion that may have happened). One row per attempt:
-- an attempt that failed before or at the source leaves its row, and the retry adds one. A worker killed
-- right after a deletion leaves its proof here, not only on its own disk.
CREATE TABLE IF NOT EXISTS ${SCHEMA}.deletions (
  id bigserial PRIMARY KEY,
  slug text NOT NULL REFERENCES ${SCHEMA}.accounts(slug),
  epoch bigint NOT NULL,
  worker text NOT NULL,
  run_id integer NOT NULL,
  source_id text NOT NULL,
  name text NOT NULL,
  sha1 text,
  sha256 text NOT NULL,
  bytes bigint NOT NULL,
  evidence text NOT NULL,
  evidence_detail text,
  intent_at timestamptz NOT NULL DEFAULT now(),
  done_at timestamptz,
  response text
);
CREATE INDEX IF NOT EXISTS deletions_slug ON ${SCHEMA}.deletions(slug, source_id);
`,
  },
];
