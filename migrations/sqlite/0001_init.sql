-- Times are microseconds since the Unix epoch (BIGINT) in both stores, so
-- filters and sorting on meta.created/lastModified compare numbers alike.

CREATE TABLE orgs (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    is_default  INTEGER NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX orgs_one_default ON orgs (is_default) WHERE is_default = 1;

CREATE TABLE admin_tokens (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE directories (
    id          BLOB PRIMARY KEY,
    org_id      BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    key_id      TEXT NOT NULL UNIQUE,
    key_hash    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    key_created_at BIGINT NOT NULL
);
CREATE INDEX directories_org ON directories (org_id);

CREATE TABLE users (
    id            BLOB PRIMARY KEY,
    directory_id  BLOB NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    user_name     TEXT NOT NULL,
    user_name_ci  TEXT NOT NULL,
    external_id   TEXT,
    active        INTEGER NOT NULL,
    primary_email TEXT,
    display_name  TEXT,
    account_id    TEXT,
    doc           TEXT NOT NULL,
    version       BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_directory_user_name ON users (directory_id, user_name_ci);
CREATE INDEX users_directory_external_id ON users (directory_id, external_id);
CREATE INDEX users_directory_primary_email ON users (directory_id, primary_email);

CREATE TABLE groups (
    id              BLOB PRIMARY KEY,
    directory_id    BLOB NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    display_name    TEXT NOT NULL,
    display_name_ci TEXT NOT NULL,
    external_id     TEXT,
    doc             TEXT NOT NULL,
    version         BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX groups_directory_display_name ON groups (directory_id, display_name_ci);
CREATE INDEX groups_directory_external_id ON groups (directory_id, external_id);

-- Members are rows, never an array in the group document: groups hold
-- 100,000+ members and adding 10,000 must be one set-based statement.
CREATE TABLE group_members (
    group_id    BLOB NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    member_id   BLOB NOT NULL,
    member_type TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id)
) WITHOUT ROWID;
CREATE INDEX group_members_member ON group_members (member_id);
