-- The audit log: one row per change (written in the change's own
-- transaction) and per failed SCIM write. No foreign keys: a directory's
-- history outlives the directory.
CREATE TABLE audit_events (
    id                 INTEGER PRIMARY KEY,
    occurred_at        BIGINT NOT NULL,
    org_id             BLOB NOT NULL,
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
    target_identifier  TEXT,
    -- Lowercased copies of the identifiers the reports search by.
    identifier_ci      TEXT,
    email_ci           TEXT,
    external_id        TEXT,
    changed_attributes TEXT,
    members_added      BIGINT,
    members_removed    BIGINT
);
-- Newest-first pages of an org or a directory (keyset on time, id), the
-- daily counters, and retention.
CREATE INDEX audit_events_org_time ON audit_events (org_id, occurred_at, id);
CREATE INDEX audit_events_directory_time ON audit_events (directory_id, occurred_at, id);
-- One person's history: by id, userName, email or externalId.
CREATE INDEX audit_events_target ON audit_events (target_id, occurred_at) WHERE target_id IS NOT NULL;
CREATE INDEX audit_events_identifier ON audit_events (identifier_ci, occurred_at) WHERE identifier_ci IS NOT NULL;
CREATE INDEX audit_events_email ON audit_events (email_ci, occurred_at) WHERE email_ci IS NOT NULL;
CREATE INDEX audit_events_external_id ON audit_events (external_id, occurred_at) WHERE external_id IS NOT NULL;

-- Reports find a user by its Atlassian account id too.
CREATE INDEX users_directory_account_id ON users (directory_id, account_id) WHERE account_id IS NOT NULL;
