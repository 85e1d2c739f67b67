-- The event feed: one row per change, written in the change's own
-- transaction (a transactional outbox), whatever the audit log's setting.
-- `sequence` is the order the feed is read in. SQLite runs one write
-- transaction at a time, whatever the process, so the order rows are
-- written in is the order they commit in: each row takes the next number
-- of its org as it is written (on PostgreSQL, whose transactions commit in
-- any order, a sequencer numbers committed rows instead). `event_id` is
-- the stable id consumers de-duplicate by.
CREATE TABLE events (
    id            INTEGER PRIMARY KEY,
    event_id      BLOB NOT NULL DEFAULT (unhex(hex(randomblob(6)) || '4' || substr(hex(randomblob(2)), 2)
                      || substr('89AB', 1 + abs(random()) % 4, 1) || substr(hex(randomblob(2)), 2)
                      || hex(randomblob(6)))),
    org_id        BLOB NOT NULL,
    directory_id  BLOB,
    type          TEXT NOT NULL,
    occurred_at   BIGINT NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
    data          TEXT NOT NULL,
    sequence      BIGINT
);
-- The feed's order, per org. The second index is where the store's shared
-- sequencer looks for rows without a number: on SQLite it stays empty.
CREATE UNIQUE INDEX events_org_sequence ON events (org_id, sequence) WHERE sequence IS NOT NULL;
CREATE INDEX events_unsequenced ON events (id) WHERE sequence IS NULL;

-- Per org: the last one pruned (a cursor before it is expired; the next
-- number when every event was pruned). `last_sequence` is PostgreSQL's.
CREATE TABLE event_orgs (
    org_id          BLOB PRIMARY KEY,
    last_sequence   BIGINT NOT NULL,
    pruned_through  BIGINT NOT NULL
);

-- The events of rows every write path changes are written by triggers,
-- in the statement of the change: no path can forget one, and none pays a
-- round trip. Rows deleted with their directory (or org) leave no event
-- of their own: `directory.deleted` says it.
CREATE TRIGGER events_user_created AFTER INSERT ON users BEGIN
    INSERT INTO events (org_id, directory_id, type, occurred_at, data, sequence)
    SELECT d.org_id, NEW.directory_id, 'user.created', NEW.created_at,
        json_object('user', json_set(NEW.doc, '$.id', lower(substr(hex(NEW.id), 1, 8) || '-' || substr(hex(NEW.id), 9, 4) || '-' || substr(hex(NEW.id), 13, 4) || '-' || substr(hex(NEW.id), 17, 4) || '-' || substr(hex(NEW.id), 21))), 'accountId', lower(substr(hex(NEW.account_id), 1, 8) || '-' || substr(hex(NEW.account_id), 9, 4) || '-' || substr(hex(NEW.account_id), 13, 4) || '-' || substr(hex(NEW.account_id), 17, 4) || '-' || substr(hex(NEW.account_id), 21))),
        COALESCE((SELECT max(e.sequence) FROM events e WHERE e.org_id = d.org_id AND e.sequence IS NOT NULL), (SELECT o.pruned_through FROM event_orgs o WHERE o.org_id = d.org_id), 0) + 1
    FROM directories d WHERE d.id = NEW.directory_id;
END;
CREATE TRIGGER events_user_updated AFTER UPDATE OF doc, active ON users
WHEN OLD.doc IS NOT NEW.doc OR OLD.active IS NOT NEW.active BEGIN
    INSERT INTO events (org_id, directory_id, type, occurred_at, data, sequence)
    SELECT d.org_id, NEW.directory_id,
        CASE WHEN OLD.active AND NOT NEW.active THEN 'user.deactivated'
             WHEN NEW.active AND NOT OLD.active THEN 'user.reactivated'
             ELSE 'user.updated' END,
        NEW.updated_at,
        json_object('user', json_set(NEW.doc, '$.id', lower(substr(hex(NEW.id), 1, 8) || '-' || substr(hex(NEW.id), 9, 4) || '-' || substr(hex(NEW.id), 13, 4) || '-' || substr(hex(NEW.id), 17, 4) || '-' || substr(hex(NEW.id), 21))), 'accountId', lower(substr(hex(NEW.account_id), 1, 8) || '-' || substr(hex(NEW.account_id), 9, 4) || '-' || substr(hex(NEW.account_id), 13, 4) || '-' || substr(hex(NEW.account_id), 17, 4) || '-' || substr(hex(NEW.account_id), 21)),
            'previousAttributes', json((SELECT json_group_object(k, json(COALESCE(ov, 'null'))) FROM (SELECT key AS k, OLD.doc -> fullkey AS ov, NEW.doc -> fullkey AS nv FROM json_each(OLD.doc) UNION SELECT key, OLD.doc -> fullkey, NEW.doc -> fullkey FROM json_each(NEW.doc)) WHERE ov IS NOT nv))),
        COALESCE((SELECT max(e.sequence) FROM events e WHERE e.org_id = d.org_id AND e.sequence IS NOT NULL), (SELECT o.pruned_through FROM event_orgs o WHERE o.org_id = d.org_id), 0) + 1
    FROM directories d WHERE d.id = NEW.directory_id;
END;
CREATE TRIGGER events_user_account AFTER UPDATE OF account_id ON users
WHEN OLD.account_id IS NOT NEW.account_id BEGIN
    INSERT INTO events (org_id, directory_id, type, occurred_at, data, sequence)
    SELECT d.org_id, NEW.directory_id,
        CASE WHEN NEW.account_id IS NULL THEN 'account.unlinked' ELSE 'account.relinked' END,
        CAST(unixepoch('subsec') * 1000000 AS INTEGER),
        json_object('userId', lower(substr(hex(NEW.id), 1, 8) || '-' || substr(hex(NEW.id), 9, 4) || '-' || substr(hex(NEW.id), 13, 4) || '-' || substr(hex(NEW.id), 17, 4) || '-' || substr(hex(NEW.id), 21)), 'accountId', lower(substr(hex(NEW.account_id), 1, 8) || '-' || substr(hex(NEW.account_id), 9, 4) || '-' || substr(hex(NEW.account_id), 13, 4) || '-' || substr(hex(NEW.account_id), 17, 4) || '-' || substr(hex(NEW.account_id), 21)),
            'previousAccountId', lower(substr(hex(OLD.account_id), 1, 8) || '-' || substr(hex(OLD.account_id), 9, 4) || '-' || substr(hex(OLD.account_id), 13, 4) || '-' || substr(hex(OLD.account_id), 17, 4) || '-' || substr(hex(OLD.account_id), 21))),
        COALESCE((SELECT max(e.sequence) FROM events e WHERE e.org_id = d.org_id AND e.sequence IS NOT NULL), (SELECT o.pruned_through FROM event_orgs o WHERE o.org_id = d.org_id), 0) + 1
    FROM directories d WHERE d.id = NEW.directory_id;
END;
CREATE TRIGGER events_user_deleted AFTER DELETE ON users BEGIN
    INSERT INTO events (org_id, directory_id, type, occurred_at, data, sequence)
    SELECT d.org_id, OLD.directory_id, 'user.deleted', CAST(unixepoch('subsec') * 1000000 AS INTEGER),
        json_object('user', json_set(OLD.doc, '$.id', lower(substr(hex(OLD.id), 1, 8) || '-' || substr(hex(OLD.id), 9, 4) || '-' || substr(hex(OLD.id), 13, 4) || '-' || substr(hex(OLD.id), 17, 4) || '-' || substr(hex(OLD.id), 21))), 'accountId', lower(substr(hex(OLD.account_id), 1, 8) || '-' || substr(hex(OLD.account_id), 9, 4) || '-' || substr(hex(OLD.account_id), 13, 4) || '-' || substr(hex(OLD.account_id), 17, 4) || '-' || substr(hex(OLD.account_id), 21))),
        COALESCE((SELECT max(e.sequence) FROM events e WHERE e.org_id = d.org_id AND e.sequence IS NOT NULL), (SELECT o.pruned_through FROM event_orgs o WHERE o.org_id = d.org_id), 0) + 1
    FROM directories d WHERE d.id = OLD.directory_id;
END;

CREATE TRIGGER events_group_created AFTER INSERT ON groups BEGIN
    INSERT INTO events (org_id, directory_id, type, occurred_at, data, sequence)
    SELECT d.org_id, NEW.directory_id, 'group.created', NEW.created_at,
        json_object('group', json_set(NEW.doc, '$.id', lower(substr(hex(NEW.id), 1, 8) || '-' || substr(hex(NEW.id), 9, 4) || '-' || substr(hex(NEW.id), 13, 4) || '-' || substr(hex(NEW.id), 17, 4) || '-' || substr(hex(NEW.id), 21)))),
        COALESCE((SELECT max(e.sequence) FROM events e WHERE e.org_id = d.org_id AND e.sequence IS NOT NULL), (SELECT o.pruned_through FROM event_orgs o WHERE o.org_id = d.org_id), 0) + 1
    FROM directories d WHERE d.id = NEW.directory_id;
END;
CREATE TRIGGER events_group_updated AFTER UPDATE OF doc ON groups
WHEN OLD.doc IS NOT NEW.doc BEGIN
    INSERT INTO events (org_id, directory_id, type, occurred_at, data, sequence)
    SELECT d.org_id, NEW.directory_id, 'group.updated', NEW.updated_at,
        json_object('group', json_set(NEW.doc, '$.id', lower(substr(hex(NEW.id), 1, 8) || '-' || substr(hex(NEW.id), 9, 4) || '-' || substr(hex(NEW.id), 13, 4) || '-' || substr(hex(NEW.id), 17, 4) || '-' || substr(hex(NEW.id), 21))),
            'previousAttributes', json((SELECT json_group_object(k, json(COALESCE(ov, 'null'))) FROM (SELECT key AS k, OLD.doc -> fullkey AS ov, NEW.doc -> fullkey AS nv FROM json_each(OLD.doc) UNION SELECT key, OLD.doc -> fullkey, NEW.doc -> fullkey FROM json_each(NEW.doc)) WHERE ov IS NOT nv))),
        COALESCE((SELECT max(e.sequence) FROM events e WHERE e.org_id = d.org_id AND e.sequence IS NOT NULL), (SELECT o.pruned_through FROM event_orgs o WHERE o.org_id = d.org_id), 0) + 1
    FROM directories d WHERE d.id = NEW.directory_id;
END;
CREATE TRIGGER events_group_deleted AFTER DELETE ON groups BEGIN
    INSERT INTO events (org_id, directory_id, type, occurred_at, data, sequence)
    SELECT d.org_id, OLD.directory_id, 'group.deleted', CAST(unixepoch('subsec') * 1000000 AS INTEGER),
        json_object('group', json_set(OLD.doc, '$.id', lower(substr(hex(OLD.id), 1, 8) || '-' || substr(hex(OLD.id), 9, 4) || '-' || substr(hex(OLD.id), 13, 4) || '-' || substr(hex(OLD.id), 17, 4) || '-' || substr(hex(OLD.id), 21)))),
        COALESCE((SELECT max(e.sequence) FROM events e WHERE e.org_id = d.org_id AND e.sequence IS NOT NULL), (SELECT o.pruned_through FROM event_orgs o WHERE o.org_id = d.org_id), 0) + 1
    FROM directories d WHERE d.id = OLD.directory_id;
END;

CREATE TRIGGER events_directory_created AFTER INSERT ON directories BEGIN
    INSERT INTO events (org_id, directory_id, type, occurred_at, data, sequence)
    VALUES (NEW.org_id, NEW.id, 'directory.created', NEW.created_at,
        json_object('directory', json_object('id', lower(substr(hex(NEW.id), 1, 8) || '-' || substr(hex(NEW.id), 9, 4) || '-' || substr(hex(NEW.id), 13, 4) || '-' || substr(hex(NEW.id), 17, 4) || '-' || substr(hex(NEW.id), 21)), 'name', NEW.name, 'keyId', NEW.key_id)),
        COALESCE((SELECT max(e.sequence) FROM events e WHERE e.org_id = NEW.org_id AND e.sequence IS NOT NULL), (SELECT o.pruned_through FROM event_orgs o WHERE o.org_id = NEW.org_id), 0) + 1);
END;
CREATE TRIGGER events_directory_key_rotated AFTER UPDATE OF key_hash ON directories
WHEN OLD.key_hash IS NOT NEW.key_hash BEGIN
    INSERT INTO events (org_id, directory_id, type, occurred_at, data, sequence)
    VALUES (NEW.org_id, NEW.id, 'directory.key_rotated', CAST(unixepoch('subsec') * 1000000 AS INTEGER),
        json_object('directory', json_object('id', lower(substr(hex(NEW.id), 1, 8) || '-' || substr(hex(NEW.id), 9, 4) || '-' || substr(hex(NEW.id), 13, 4) || '-' || substr(hex(NEW.id), 17, 4) || '-' || substr(hex(NEW.id), 21)), 'name', NEW.name, 'keyId', NEW.key_id),
            'previousKeyId', OLD.key_id),
        COALESCE((SELECT max(e.sequence) FROM events e WHERE e.org_id = NEW.org_id AND e.sequence IS NOT NULL), (SELECT o.pruned_through FROM event_orgs o WHERE o.org_id = NEW.org_id), 0) + 1);
END;
CREATE TRIGGER events_directory_deleted AFTER DELETE ON directories BEGIN
    INSERT INTO events (org_id, directory_id, type, occurred_at, data, sequence)
    VALUES (OLD.org_id, OLD.id, 'directory.deleted', CAST(unixepoch('subsec') * 1000000 AS INTEGER),
        json_object('directory', json_object('id', lower(substr(hex(OLD.id), 1, 8) || '-' || substr(hex(OLD.id), 9, 4) || '-' || substr(hex(OLD.id), 13, 4) || '-' || substr(hex(OLD.id), 17, 4) || '-' || substr(hex(OLD.id), 21)), 'name', OLD.name, 'keyId', OLD.key_id)),
        COALESCE((SELECT max(e.sequence) FROM events e WHERE e.org_id = OLD.org_id AND e.sequence IS NOT NULL), (SELECT o.pruned_through FROM event_orgs o WHERE o.org_id = OLD.org_id), 0) + 1);
END;

CREATE TRIGGER events_account_active AFTER UPDATE OF active ON accounts
WHEN OLD.active IS NOT NEW.active BEGIN
    INSERT INTO events (org_id, directory_id, type, occurred_at, data, sequence)
    VALUES (NEW.org_id, NULL,
        CASE WHEN NEW.active THEN 'account.reactivated' ELSE 'account.deactivated' END, CAST(unixepoch('subsec') * 1000000 AS INTEGER),
        json_object('account', json_object('id', lower(substr(hex(NEW.id), 1, 8) || '-' || substr(hex(NEW.id), 9, 4) || '-' || substr(hex(NEW.id), 13, 4) || '-' || substr(hex(NEW.id), 17, 4) || '-' || substr(hex(NEW.id), 21)), 'email', NEW.email, 'displayName', NEW.display_name, 'active', json(CASE WHEN NEW.active THEN 'true' ELSE 'false' END))),
        COALESCE((SELECT max(e.sequence) FROM events e WHERE e.org_id = NEW.org_id AND e.sequence IS NOT NULL), (SELECT o.pruned_through FROM event_orgs o WHERE o.org_id = NEW.org_id), 0) + 1);
END;
CREATE TRIGGER events_account_email AFTER UPDATE OF email ON accounts
WHEN OLD.email IS NOT NEW.email BEGIN
    INSERT INTO events (org_id, directory_id, type, occurred_at, data, sequence)
    VALUES (NEW.org_id, NULL, 'account.email_changed', CAST(unixepoch('subsec') * 1000000 AS INTEGER),
        json_object('account', json_object('id', lower(substr(hex(NEW.id), 1, 8) || '-' || substr(hex(NEW.id), 9, 4) || '-' || substr(hex(NEW.id), 13, 4) || '-' || substr(hex(NEW.id), 17, 4) || '-' || substr(hex(NEW.id), 21)), 'email', NEW.email, 'displayName', NEW.display_name, 'active', json(CASE WHEN NEW.active THEN 'true' ELSE 'false' END)), 'previousAttributes', json_object('email', OLD.email)),
        COALESCE((SELECT max(e.sequence) FROM events e WHERE e.org_id = NEW.org_id AND e.sequence IS NOT NULL), (SELECT o.pruned_through FROM event_orgs o WHERE o.org_id = NEW.org_id), 0) + 1);
END;
CREATE TRIGGER events_account_deleted AFTER DELETE ON accounts BEGIN
    INSERT INTO events (org_id, directory_id, type, occurred_at, data, sequence)
    SELECT OLD.org_id, NULL, 'account.deleted', CAST(unixepoch('subsec') * 1000000 AS INTEGER), json_object('account', json_object('id', lower(substr(hex(OLD.id), 1, 8) || '-' || substr(hex(OLD.id), 9, 4) || '-' || substr(hex(OLD.id), 13, 4) || '-' || substr(hex(OLD.id), 17, 4) || '-' || substr(hex(OLD.id), 21)), 'email', OLD.email, 'displayName', OLD.display_name, 'active', json(CASE WHEN OLD.active THEN 'true' ELSE 'false' END))),
        COALESCE((SELECT max(e.sequence) FROM events e WHERE e.org_id = OLD.org_id AND e.sequence IS NOT NULL), (SELECT o.pruned_through FROM event_orgs o WHERE o.org_id = OLD.org_id), 0) + 1
    WHERE EXISTS (SELECT 1 FROM orgs WHERE orgs.id = OLD.org_id);
END;

CREATE TRIGGER events_sync_run_started AFTER INSERT ON sync_runs BEGIN
    INSERT INTO events (org_id, directory_id, type, occurred_at, data, sequence)
    VALUES (NEW.org_id, NEW.directory_id, 'sync.run_started', NEW.started_at,
        json_object('run', json_object('id', lower(substr(hex(NEW.id), 1, 8) || '-' || substr(hex(NEW.id), 9, 4) || '-' || substr(hex(NEW.id), 13, 4) || '-' || substr(hex(NEW.id), 17, 4) || '-' || substr(hex(NEW.id), 21)), 'directoryId', lower(substr(hex(NEW.directory_id), 1, 8) || '-' || substr(hex(NEW.directory_id), 9, 4) || '-' || substr(hex(NEW.directory_id), 13, 4) || '-' || substr(hex(NEW.directory_id), 17, 4) || '-' || substr(hex(NEW.directory_id), 21)), 'trigger', NEW.trigger, 'state', NEW.state, 'actor', NEW.actor)),
        COALESCE((SELECT max(e.sequence) FROM events e WHERE e.org_id = NEW.org_id AND e.sequence IS NOT NULL), (SELECT o.pruned_through FROM event_orgs o WHERE o.org_id = NEW.org_id), 0) + 1);
END;
CREATE TRIGGER events_sync_run_finished AFTER UPDATE OF state ON sync_runs
WHEN OLD.state = 'running' AND NEW.state <> 'running' BEGIN
    INSERT INTO events (org_id, directory_id, type, occurred_at, data, sequence)
    VALUES (NEW.org_id, NEW.directory_id, 'sync.run_finished', COALESCE(NEW.finished_at, CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
        json_object('run', json_object('id', lower(substr(hex(NEW.id), 1, 8) || '-' || substr(hex(NEW.id), 9, 4) || '-' || substr(hex(NEW.id), 13, 4) || '-' || substr(hex(NEW.id), 17, 4) || '-' || substr(hex(NEW.id), 21)), 'directoryId', lower(substr(hex(NEW.directory_id), 1, 8) || '-' || substr(hex(NEW.directory_id), 9, 4) || '-' || substr(hex(NEW.directory_id), 13, 4) || '-' || substr(hex(NEW.directory_id), 17, 4) || '-' || substr(hex(NEW.directory_id), 21)), 'trigger', NEW.trigger, 'state', NEW.state, 'actor', NEW.actor, 'accountsTotal', NEW.accounts_total, 'accountsCreated', NEW.accounts_created, 'accountsUpdated', NEW.accounts_updated, 'accountsDeactivated', NEW.accounts_deactivated, 'accessGranted', NEW.access_granted, 'accessRevoked', NEW.access_revoked, 'emailsQueued', NEW.emails_queued, 'usersSkippedByDomain', NEW.users_skipped_by_domain)),
        COALESCE((SELECT max(e.sequence) FROM events e WHERE e.org_id = NEW.org_id AND e.sequence IS NOT NULL), (SELECT o.pruned_through FROM event_orgs o WHERE o.org_id = NEW.org_id), 0) + 1);
END;
