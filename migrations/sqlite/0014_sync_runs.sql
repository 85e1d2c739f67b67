-- The sync engine's state: its runs, what the last run applied, and when a
-- scheduled directory syncs next.

-- A directory can be switched off: no run starts, nothing changes access.
ALTER TABLE sync_settings ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;

-- When the engine first brought the account into the organisation's synced
-- accounts (its "creation" in a run's counts, and its welcome email).
ALTER TABLE accounts ADD COLUMN synced_at BIGINT;

-- One run of the engine over one directory. A run works through the
-- directory's accounts in id order, one transaction a batch; `cursor` is the
-- last account written and the counts are added in the same transaction, so
-- a run taken over after a crash goes on from there without counting twice.
-- `lease_owner` is the process running it until `lease_expires_at`.
CREATE TABLE sync_runs (
    id                       BLOB PRIMARY KEY,
    directory_id             BLOB NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    org_id                   BLOB NOT NULL,
    trigger                  TEXT NOT NULL CHECK (trigger IN ('manual', 'scheduled', 'continuous')),
    state                    TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    started_at               BIGINT NOT NULL,
    finished_at              BIGINT,
    settings                 TEXT NOT NULL,
    plan                     TEXT,
    cursor                   BLOB,
    accounts_total           BIGINT NOT NULL DEFAULT 0,
    accounts_done            BIGINT NOT NULL DEFAULT 0,
    accounts_created         BIGINT NOT NULL DEFAULT 0,
    accounts_updated         BIGINT NOT NULL DEFAULT 0,
    accounts_deactivated     BIGINT NOT NULL DEFAULT 0,
    access_granted           BIGINT NOT NULL DEFAULT 0,
    access_revoked           BIGINT NOT NULL DEFAULT 0,
    emails_queued            BIGINT NOT NULL DEFAULT 0,
    users_skipped_by_domain  BIGINT NOT NULL DEFAULT 0,
    failures                 TEXT,
    actor                    TEXT NOT NULL,
    lease_owner              TEXT,
    lease_expires_at         BIGINT
);
-- One run at a time per directory, across processes.
CREATE UNIQUE INDEX sync_runs_one_running ON sync_runs (directory_id) WHERE state = 'running';
CREATE INDEX sync_runs_directory ON sync_runs (directory_id, started_at, id);

-- What the last run decided about each group in scope: `applied` (its grants
-- give access) or `too_large` (left as it was). The continuous path reads it
-- so that a single change gives what a run would. No foreign key: a group
-- deleted since is still named in the next run's changes.
CREATE TABLE sync_group_state (
    directory_id  BLOB NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    group_id      BLOB NOT NULL,
    name          TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('applied', 'too_large')),
    size          BIGINT NOT NULL,
    PRIMARY KEY (directory_id, group_id)
) WITHOUT ROWID;

-- The settings the last run applied (edits apply from the next run), and
-- what it synced.
CREATE TABLE sync_state (
    directory_id    BLOB PRIMARY KEY REFERENCES directories (id) ON DELETE CASCADE,
    run_id          BLOB NOT NULL,
    scope_all       INTEGER NOT NULL,
    domains         TEXT,
    email_new_users INTEGER NOT NULL,
    synced_users    BIGINT NOT NULL,
    synced_groups   BIGINT NOT NULL,
    synced_domains  BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
) WITHOUT ROWID;

-- When a scheduled directory syncs next; claimed with a conditional update
-- so one process fires each interval.
CREATE TABLE sync_schedule (
    directory_id  BLOB PRIMARY KEY REFERENCES directories (id) ON DELETE CASCADE,
    next_run_at   BIGINT NOT NULL
) WITHOUT ROWID;
