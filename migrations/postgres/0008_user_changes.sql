-- Servers keep the users they read in memory. Every change that alters how
-- a user reads (the row, its groups' names, its memberships) announces
-- itself on the channel "scimd.<schema>" from its own transaction, so the
-- other servers on this database (and this one, for changes made by
-- others: the CLI, other replicas) stop serving what they hold of it.
-- PostgreSQL delivers a notice only once its transaction has committed.
--
-- A notice names up to 100 users ("u:<id>,<id>,…"), or the directories of
-- a larger change ("d:<id>"): a notice's payload is bounded (8,000 bytes).

CREATE FUNCTION announce_user_changes(users UUID[]) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    channel TEXT := 'scimd.' || current_schema();
    directory UUID;
BEGIN
    IF cardinality(users) = 0 THEN
        RETURN;
    ELSIF cardinality(users) <= 100 THEN
        PERFORM pg_notify(channel, 'u:' || array_to_string(users, ','));
    ELSE
        FOR directory IN SELECT DISTINCT u.directory_id FROM users u WHERE u.id = ANY (users) LOOP
            PERFORM pg_notify(channel, 'd:' || directory);
        END LOOP;
    END IF;
END
$$;

-- Users updated or deleted. Deleted users are gone from `users` by the
-- time this runs, so a large delete names its directories from the rows.
CREATE FUNCTION announce_changed_users() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    channel TEXT := 'scimd.' || current_schema();
    directory UUID;
BEGIN
    IF (SELECT count(*) FROM (SELECT 1 FROM changed_users LIMIT 101) s) <= 100 THEN
        PERFORM announce_user_changes(ARRAY(SELECT id FROM changed_users));
    ELSE
        FOR directory IN SELECT DISTINCT directory_id FROM changed_users LOOP
            PERFORM pg_notify(channel, 'd:' || directory);
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_announce_updates AFTER UPDATE ON users
    REFERENCING OLD TABLE AS changed_users
    FOR EACH STATEMENT EXECUTE FUNCTION announce_changed_users();

CREATE TRIGGER users_announce_deletes AFTER DELETE ON users
    REFERENCING OLD TABLE AS changed_users
    FOR EACH STATEMENT EXECUTE FUNCTION announce_changed_users();

-- Memberships added or removed: the member users' `groups` changed.
CREATE FUNCTION announce_changed_members() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM announce_user_changes(
        ARRAY(SELECT DISTINCT member_id FROM changed_members WHERE member_type = 'User'));
    RETURN NULL;
END
$$;

CREATE TRIGGER group_members_announce_inserts AFTER INSERT ON group_members
    REFERENCING NEW TABLE AS changed_members
    FOR EACH STATEMENT EXECUTE FUNCTION announce_changed_members();

CREATE TRIGGER group_members_announce_deletes AFTER DELETE ON group_members
    REFERENCING OLD TABLE AS changed_members
    FOR EACH STATEMENT EXECUTE FUNCTION announce_changed_members();

-- A group renamed: its members' `groups` show the new name.
CREATE FUNCTION announce_renamed_groups() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    channel TEXT := 'scimd.' || current_schema();
    directory UUID;
BEGIN
    FOR directory IN
        SELECT DISTINCT n.directory_id FROM new_groups n JOIN old_groups o ON o.id = n.id
        WHERE n.display_name IS DISTINCT FROM o.display_name
    LOOP
        PERFORM pg_notify(channel, 'd:' || directory);
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER groups_announce_renames AFTER UPDATE ON groups
    REFERENCING OLD TABLE AS old_groups NEW TABLE AS new_groups
    FOR EACH STATEMENT EXECUTE FUNCTION announce_renamed_groups();
