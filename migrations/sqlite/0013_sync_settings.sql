-- A directory's sync settings. No row: the defaults (continuous, every 240
-- minutes, all users, all verified domains, no email, the server's group
-- limit). The selected groups and domains are rows of their own, so the
-- sync engine joins them and a deleted SCIM group or domain drops out by
-- cascade.
CREATE TABLE sync_settings (
    directory_id      BLOB PRIMARY KEY REFERENCES directories (id) ON DELETE CASCADE,
    mode              TEXT NOT NULL CHECK (mode IN ('continuous', 'scheduled')),
    interval_minutes  INTEGER NOT NULL,
    scope_type        TEXT NOT NULL CHECK (scope_type IN ('all', 'groups')),
    domains_type      TEXT NOT NULL CHECK (domains_type IN ('all', 'list')),
    email_new_users   INTEGER NOT NULL,
    group_user_limit  INTEGER,
    updated_at        BIGINT NOT NULL
) WITHOUT ROWID;

-- The groups of a `groups` scope, in the order the admin gave them.
CREATE TABLE sync_scope_groups (
    directory_id  BLOB NOT NULL REFERENCES sync_settings (directory_id) ON DELETE CASCADE,
    group_id      BLOB NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    PRIMARY KEY (directory_id, group_id)
) WITHOUT ROWID;
CREATE INDEX sync_scope_groups_group ON sync_scope_groups (group_id);

-- The domains of a `list` selection, in the order given; a domain the org
-- removes leaves the selection with it.
CREATE TABLE sync_domains (
    directory_id  BLOB NOT NULL REFERENCES sync_settings (directory_id) ON DELETE CASCADE,
    org_id        BLOB NOT NULL,
    name          TEXT NOT NULL,
    position      INTEGER NOT NULL,
    PRIMARY KEY (directory_id, name),
    FOREIGN KEY (org_id, name) REFERENCES domains (org_id, name) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX sync_domains_domain ON sync_domains (org_id, name);
