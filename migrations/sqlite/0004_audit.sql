-- The audit log: one row per event, written in the transaction of the
-- change it records. Rows are kept in org and time order (the order every
-- report reads them in) and otherwise indexed only by target, so an event
-- is written to two B-trees. No foreign keys: a directory's history
-- outlives the directory.
CREATE TABLE audit_events (
    org_id             BLOB NOT NULL,
    occurred_at        BIGINT NOT NULL,
    id                 BIGINT NOT NULL,
    directory_id       BLOB,
    actor_type         TEXT NOT NULL,
    actor_id           TEXT,
    source_ip          TEXT,
    request_id         TEXT,
    action             TEXT NOT NULL,
    outcome            TEXT NOT NULL,
    status             INTEGER,
    scim_type          TEXT,
    detail             TEXT,
    target_type        TEXT NOT NULL,
    target_id          BLOB,
    -- When the target was created: leads the target index, so events of
    -- new users and groups append to it instead of landing at random.
    target_created_at  BIGINT,
    target_identifier  TEXT,
    -- Lowercased identifiers, searched only on events without a target
    -- (a failed create is found by the userName it tried).
    identifier_ci      TEXT,
    email_ci           TEXT,
    external_id        TEXT,
    changed_attributes TEXT,
    members_added      BIGINT,
    members_removed    BIGINT,
    PRIMARY KEY (org_id, occurred_at, id)
) WITHOUT ROWID;
CREATE INDEX audit_events_target ON audit_events (target_created_at, target_id, occurred_at)
    WHERE target_id IS NOT NULL;
CREATE INDEX audit_events_untargeted_identifier ON audit_events (identifier_ci)
    WHERE target_id IS NULL AND identifier_ci IS NOT NULL;
CREATE INDEX audit_events_untargeted_email ON audit_events (email_ci)
    WHERE target_id IS NULL AND email_ci IS NOT NULL;
CREATE INDEX audit_events_untargeted_external_id ON audit_events (external_id)
    WHERE target_id IS NULL AND external_id IS NOT NULL;

-- Identifiers that stopped being current (a user renamed or deleted, a
-- directory deleted), so its history is still found by them. Current ones
-- are looked up in `users` and `user_emails`. `value` is 'i:' and a
-- lowercased userName or email, 'x:' and an exact externalId, or 'u:' and
-- the id (32 hex digits) of a deleted user.
CREATE TABLE audit_subjects (
    org_id      BLOB NOT NULL,
    value       TEXT NOT NULL,
    target_id   BLOB NOT NULL,
    target_created_at BIGINT,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, value, target_id)
) WITHOUT ROWID;
CREATE INDEX audit_subjects_recorded ON audit_subjects (recorded_at);

-- Reports find a user by its Atlassian account id too.
CREATE INDEX users_directory_account_id ON users (directory_id, account_id)
    WHERE account_id IS NOT NULL;
