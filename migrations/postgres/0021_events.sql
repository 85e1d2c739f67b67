-- The event feed: one row per change, written in the change's own
-- transaction (a transactional outbox), whatever the audit log's setting.
-- `id` is the order rows were written in; `sequence`, the order the feed is
-- read in, is given only to committed rows, by one sequencer at a time
-- (`store/events.rs`), so a transaction that commits late gets a later
-- sequence instead of appearing behind a reader's cursor. `event_id` is
-- the stable id consumers de-duplicate by. `data` is JSON text, served as
-- it is stored.
CREATE TABLE events (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      UUID NOT NULL DEFAULT gen_random_uuid(),
    org_id        UUID NOT NULL,
    directory_id  UUID,
    type          TEXT NOT NULL,
    occurred_at   BIGINT NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
    data          TEXT NOT NULL,
    sequence      BIGINT
);
-- The feed's order, per org; rows waiting for the sequencer are apart.
CREATE UNIQUE INDEX events_org_sequence ON events (org_id, sequence) WHERE sequence IS NOT NULL;
CREATE INDEX events_unsequenced ON events (id) WHERE sequence IS NULL;

-- Per org: the last sequence given, and the last one pruned (a cursor
-- before it is expired).
CREATE TABLE event_orgs (
    org_id          UUID PRIMARY KEY,
    last_sequence   BIGINT NOT NULL,
    pruned_through  BIGINT NOT NULL
);

CREATE FUNCTION events_now() RETURNS BIGINT LANGUAGE sql VOLATILE AS
$$ SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint $$;

-- The shallow difference of two documents: each top-level attribute that
-- changed, with its previous value (null when it was absent).
CREATE FUNCTION events_previous(old_doc JSONB, new_doc JSONB) RETURNS JSONB LANGUAGE sql IMMUTABLE AS
$$ SELECT COALESCE(jsonb_object_agg(k, COALESCE(old_doc -> k, 'null'::jsonb)), '{}'::jsonb)
   FROM (SELECT jsonb_object_keys(old_doc) UNION SELECT jsonb_object_keys(new_doc)) s (k)
   WHERE (old_doc -> k) IS DISTINCT FROM (new_doc -> k) $$;

-- The events of rows every write path changes are written by triggers,
-- in the statement of the change: no path can forget one, and none pays a
-- round trip. Rows deleted with their directory (or org) leave no event
-- of their own: `directory.deleted` says it.
CREATE FUNCTION events_users() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    org UUID;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT org_id INTO org FROM directories WHERE id = OLD.directory_id;
        IF org IS NOT NULL THEN
            INSERT INTO events (org_id, directory_id, type, occurred_at, data)
            VALUES (org, OLD.directory_id, 'user.deleted', events_now(),
                jsonb_build_object('user', OLD.doc || jsonb_build_object('id', OLD.id),
                    'accountId', OLD.account_id)::text);
        END IF;
        RETURN NULL;
    END IF;
    SELECT org_id INTO org FROM directories WHERE id = NEW.directory_id;
    IF org IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO events (org_id, directory_id, type, occurred_at, data)
        VALUES (org, NEW.directory_id, 'user.created', NEW.created_at,
            jsonb_build_object('user', NEW.doc || jsonb_build_object('id', NEW.id),
                'accountId', NEW.account_id)::text);
        RETURN NULL;
    END IF;
    IF OLD.doc IS DISTINCT FROM NEW.doc OR OLD.active IS DISTINCT FROM NEW.active THEN
        INSERT INTO events (org_id, directory_id, type, occurred_at, data)
        VALUES (org, NEW.directory_id,
            CASE WHEN OLD.active AND NOT NEW.active THEN 'user.deactivated'
                 WHEN NEW.active AND NOT OLD.active THEN 'user.reactivated'
                 ELSE 'user.updated' END,
            NEW.updated_at,
            jsonb_build_object('user', NEW.doc || jsonb_build_object('id', NEW.id),
                'accountId', NEW.account_id,
                'previousAttributes', events_previous(OLD.doc, NEW.doc))::text);
    END IF;
    IF OLD.account_id IS DISTINCT FROM NEW.account_id THEN
        INSERT INTO events (org_id, directory_id, type, occurred_at, data)
        VALUES (org, NEW.directory_id,
            CASE WHEN NEW.account_id IS NULL THEN 'account.unlinked' ELSE 'account.relinked' END,
            events_now(),
            jsonb_build_object('userId', NEW.id, 'accountId', NEW.account_id,
                'previousAccountId', OLD.account_id)::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER events_users AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION events_users();

CREATE FUNCTION events_groups() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    org UUID;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT org_id INTO org FROM directories WHERE id = OLD.directory_id;
        IF org IS NOT NULL THEN
            INSERT INTO events (org_id, directory_id, type, occurred_at, data)
            VALUES (org, OLD.directory_id, 'group.deleted', events_now(),
                jsonb_build_object('group', OLD.doc || jsonb_build_object('id', OLD.id))::text);
        END IF;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.doc IS NOT DISTINCT FROM NEW.doc THEN
        RETURN NULL;
    END IF;
    SELECT org_id INTO org FROM directories WHERE id = NEW.directory_id;
    IF org IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO events (org_id, directory_id, type, occurred_at, data)
        VALUES (org, NEW.directory_id, 'group.created', NEW.created_at,
            jsonb_build_object('group', NEW.doc || jsonb_build_object('id', NEW.id))::text);
    ELSE
        INSERT INTO events (org_id, directory_id, type, occurred_at, data)
        VALUES (org, NEW.directory_id, 'group.updated', NEW.updated_at,
            jsonb_build_object('group', NEW.doc || jsonb_build_object('id', NEW.id),
                'previousAttributes', events_previous(OLD.doc, NEW.doc))::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER events_groups AFTER INSERT OR UPDATE OR DELETE ON groups
    FOR EACH ROW EXECUTE FUNCTION events_groups();

CREATE FUNCTION events_directories() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO events (org_id, directory_id, type, occurred_at, data)
        VALUES (NEW.org_id, NEW.id, 'directory.created', NEW.created_at,
            jsonb_build_object('directory', jsonb_build_object('id', NEW.id, 'name', NEW.name,
                'keyId', NEW.key_id))::text);
    ELSIF TG_OP = 'UPDATE' THEN
        IF OLD.key_hash IS DISTINCT FROM NEW.key_hash THEN
            INSERT INTO events (org_id, directory_id, type, occurred_at, data)
            VALUES (NEW.org_id, NEW.id, 'directory.key_rotated', events_now(),
                jsonb_build_object('directory', jsonb_build_object('id', NEW.id, 'name', NEW.name,
                    'keyId', NEW.key_id), 'previousKeyId', OLD.key_id)::text);
        END IF;
    ELSE
        INSERT INTO events (org_id, directory_id, type, occurred_at, data)
        VALUES (OLD.org_id, OLD.id, 'directory.deleted', events_now(),
            jsonb_build_object('directory', jsonb_build_object('id', OLD.id, 'name', OLD.name,
                'keyId', OLD.key_id))::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER events_directories AFTER INSERT OR UPDATE OR DELETE ON directories
    FOR EACH ROW EXECUTE FUNCTION events_directories();

CREATE FUNCTION events_accounts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF EXISTS (SELECT 1 FROM orgs WHERE id = OLD.org_id) THEN
            INSERT INTO events (org_id, directory_id, type, occurred_at, data)
            VALUES (OLD.org_id, NULL, 'account.deleted', events_now(),
                jsonb_build_object('account', jsonb_build_object('id', OLD.id, 'email', OLD.email,
                    'displayName', OLD.display_name, 'active', OLD.active))::text);
        END IF;
        RETURN NULL;
    END IF;
    IF OLD.active IS DISTINCT FROM NEW.active THEN
        INSERT INTO events (org_id, directory_id, type, occurred_at, data)
        VALUES (NEW.org_id, NULL,
            CASE WHEN NEW.active THEN 'account.reactivated' ELSE 'account.deactivated' END,
            events_now(),
            jsonb_build_object('account', jsonb_build_object('id', NEW.id, 'email', NEW.email,
                'displayName', NEW.display_name, 'active', NEW.active))::text);
    END IF;
    IF OLD.email IS DISTINCT FROM NEW.email THEN
        INSERT INTO events (org_id, directory_id, type, occurred_at, data)
        VALUES (NEW.org_id, NULL, 'account.email_changed', events_now(),
            jsonb_build_object('account', jsonb_build_object('id', NEW.id, 'email', NEW.email,
                'displayName', NEW.display_name, 'active', NEW.active),
                'previousAttributes', jsonb_build_object('email', OLD.email))::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER events_accounts AFTER UPDATE OR DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION events_accounts();

CREATE FUNCTION events_sync_runs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO events (org_id, directory_id, type, occurred_at, data)
        VALUES (NEW.org_id, NEW.directory_id, 'sync.run_started', NEW.started_at,
            jsonb_build_object('run', jsonb_build_object('id', NEW.id,
                'directoryId', NEW.directory_id, 'trigger', NEW.trigger, 'state', NEW.state,
                'actor', NEW.actor))::text);
    ELSIF OLD.state = 'running' AND NEW.state <> 'running' THEN
        INSERT INTO events (org_id, directory_id, type, occurred_at, data)
        VALUES (NEW.org_id, NEW.directory_id, 'sync.run_finished',
            COALESCE(NEW.finished_at, events_now()),
            jsonb_build_object('run', jsonb_build_object('id', NEW.id,
                'directoryId', NEW.directory_id, 'trigger', NEW.trigger, 'state', NEW.state,
                'actor', NEW.actor, 'accountsTotal', NEW.accounts_total,
                'accountsCreated', NEW.accounts_created, 'accountsUpdated', NEW.accounts_updated,
                'accountsDeactivated', NEW.accounts_deactivated,
                'accessGranted', NEW.access_granted, 'accessRevoked', NEW.access_revoked,
                'emailsQueued', NEW.emails_queued,
                'usersSkippedByDomain', NEW.users_skipped_by_domain))::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER events_sync_runs AFTER INSERT OR UPDATE OF state ON sync_runs
    FOR EACH ROW EXECUTE FUNCTION events_sync_runs();
