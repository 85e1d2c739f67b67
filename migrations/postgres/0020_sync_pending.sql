-- Directories with SCIM changes that a process's continuous sync has not
-- applied yet, one row per directory and process. A process writes its
-- row before the first such change commits and removes it once it has
-- applied them all; it renews the row's expiry while it lives. A row left
-- by a process that died expires, and another process (or the restarted
-- one) reconciles the directory with a run: no change waits for a run
-- that might never come.
CREATE TABLE sync_pending (
    directory_id  UUID NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    owner         TEXT NOT NULL,
    -- Which of the owner's marks this is: a removal names it, so it cannot
    -- remove a mark written again meanwhile.
    generation    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    PRIMARY KEY (directory_id, owner)
);
CREATE INDEX sync_pending_expiry ON sync_pending (expires_at);
CREATE INDEX sync_pending_owner ON sync_pending (owner);
