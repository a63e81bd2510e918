// Numbered schema steps. Never edit a step that has shipped: add a new one.

export const MIGRATIONS: string[] = [
  // v1
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

  CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    command TEXT NOT NULL,
    source TEXT NOT NULL,
    destination TEXT NOT NULL,
    options TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    outcome TEXT,
    exit_code INTEGER,
    counts TEXT
  );

  CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    source_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    album_id TEXT,
    album_name TEXT,
    size INTEGER,
    kind TEXT NOT NULL,
    declared_sha1 TEXT,
    declared_time TEXT,
    item_json TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('discovered','transferring','uploaded','verified','source-deleted','failed','rejected','skipped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    mime_type TEXT,
    exif_time TEXT,
    capture_time TEXT,
    capture_source TEXT,
    gps TEXT,
    camera TEXT,
    width INTEGER,
    height INTEGER,
    sha1 TEXT,
    sha256 TEXT,
    quickxor TEXT,
    bytes_read INTEGER,
    declared_hash_ok INTEGER,
    container TEXT,
    upload_session TEXT,
    staged TEXT,
    dest_id TEXT,
    dest_path TEXT,
    duplicate_of INTEGER REFERENCES items(id),
    evidence_level TEXT CHECK (evidence_level IN ('bytes','pixels','received')),
    evidence_detail TEXT,
    verified_at TEXT,
    deleted_at TEXT,
    first_run INTEGER,
    last_run INTEGER,
    updated_at TEXT NOT NULL
  );
  CREATE INDEX items_state_size ON items(state, size);
  CREATE INDEX items_pending ON items(id) WHERE state IN ('discovered','transferring','failed');
  CREATE INDEX items_uploaded ON items(id) WHERE state = 'uploaded';
  CREATE INDEX items_deletable ON items(id) WHERE state IN ('verified','skipped');
  CREATE INDEX items_dest ON items(dest_id) WHERE dest_id IS NOT NULL;

  CREATE TABLE deletions (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES items(id),
    source_id TEXT NOT NULL,
    name TEXT NOT NULL,
    run_id INTEGER REFERENCES runs(id),
    evidence_level TEXT NOT NULL,
    response TEXT NOT NULL,
    at TEXT NOT NULL
  );

  CREATE TABLE provider_kv (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (scope, key)
  );
  `,
  // v2: capture dates. Where the time came from in words and which offset it carries; what the
  // destination will date the item by; and, when the date was written into the uploaded copy,
  // that copy's hashes and size (the source's stay in sha1/sha256/quickxor/bytes_read: deletion
  // binds to those).
  `
  ALTER TABLE items ADD COLUMN capture_detail TEXT;
  ALTER TABLE items ADD COLUMN capture_offset_from TEXT;
  ALTER TABLE items ADD COLUMN date_note TEXT;
  ALTER TABLE items ADD COLUMN copy_sha1 TEXT;
  ALTER TABLE items ADD COLUMN copy_sha256 TEXT;
  ALTER TABLE items ADD COLUMN copy_quickxor TEXT;
  ALTER TABLE items ADD COLUMN copy_size INTEGER;
  `,
  // v3: deletion bound to the proven version of an item (issue 8)
  `
  -- The source's name for the version of the object that was listed (and read).
  ALTER TABLE items ADD COLUMN source_version TEXT;
  -- Why a verified item is deliberately left at the source (a newer version replaced it there).
  ALTER TABLE items ADD COLUMN kept_reason TEXT;
  -- The run that started deleting this item at the source and has not recorded it yet: a kill
  -- between the delete and its record leaves this set, and the next run repairs the record.
  ALTER TABLE items ADD COLUMN deleting_run INTEGER;
  -- What the destination showed right before the deletion (the evidence it relied on).
  ALTER TABLE deletions ADD COLUMN evidence TEXT;
  `,
  // v4: outcome kinds (issue 21). Why an item is skipped or rejected, as one of a fixed set of
  // values (reason_kinds; a later kind is added by a later step), beside the sentence for people
  // in reason. Earlier files only had the sentence: each kind is derived from the words that
  // gallery-bridge up to v3 wrote (state/items.ts, src/engine/context.ts, the providers).
  `
  CREATE TABLE reason_kinds (kind TEXT PRIMARY KEY, state TEXT NOT NULL CHECK (state IN ('skipped','rejected')));
  INSERT INTO reason_kinds (kind, state) VALUES
    ('same-bytes-at-destination', 'skipped'),
    ('duplicate-of-item', 'skipped'),
    ('in-library-from-another-app', 'skipped'),
    ('gone-from-source', 'rejected'),
    ('replaced-at-source', 'rejected'),
    ('size-not-declared', 'rejected'),
    ('dated-copy-differs', 'rejected'),
    ('refused-by-source', 'rejected'),
    ('refused-by-destination', 'rejected');
  -- The kind of the reason: set with it, cleared with it.
  ALTER TABLE items ADD COLUMN reason_kind TEXT REFERENCES reason_kinds(kind);
  UPDATE items SET reason_kind = CASE
    WHEN reason LIKE 'already in your library from another app%' THEN 'in-library-from-another-app'
    WHEN reason LIKE 'already at the destination%' THEN 'same-bytes-at-destination'
    WHEN reason LIKE 'same bytes as item %' THEN 'duplicate-of-item'
    WHEN reason LIKE 'gone from the source%' THEN 'gone-from-source'
    WHEN reason LIKE 'replaced at the source by a newer version%' THEN 'replaced-at-source'
    WHEN reason LIKE 'the source does not declare the size%' THEN 'size-not-declared'
    WHEN reason LIKE 'the dated copy was not uploaded%' THEN 'dated-copy-differs'
    WHEN reason LIKE 'Xiaomi will not hand out item%' OR reason LIKE 'download of item % refused%' THEN 'refused-by-source'
    WHEN state = 'skipped' AND duplicate_of IS NOT NULL THEN 'duplicate-of-item'
    WHEN state = 'skipped' THEN 'same-bytes-at-destination'
    WHEN reason IS NULL THEN NULL
    ELSE 'refused-by-destination'
  END;
  `,
  // v5: the run that read and hashed the item's bytes (with its hashes). A deletion in that same
  // run may trust the source's cheap identity checks; any other run has the bytes read again.
  // Kept in memory before, it grew with every item waiting for its deletion (issue 23 item 8).
  `
  ALTER TABLE items ADD COLUMN read_run INTEGER;
  `,
];
