-- How many users and groups each directory holds, kept by triggers so that
-- the console's overview reads a few small rows instead of counting
-- millions on every load.
--
-- A directory's count is spread over up to 16 rows ("shards", picked by the
-- writing connection): one row per directory would make every concurrent
-- insert into the same directory wait on that row's lock until commit,
-- which undoes PostgreSQL's group commit. Readers sum the shards.
--
-- No foreign key: a directory's deletion removes its users by cascade, and
-- their triggers write here while the directory row is already gone.
-- `delete_directory` clears the rows afterwards; readers join `directories`.
CREATE TABLE directory_counts (
    directory_id UUID NOT NULL,
    shard        SMALLINT NOT NULL,
    users        BIGINT NOT NULL DEFAULT 0,
    groups       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (directory_id, shard)
);

INSERT INTO directory_counts (directory_id, shard, users, groups)
SELECT d.id, 0,
       (SELECT count(*) FROM users u WHERE u.directory_id = d.id),
       (SELECT count(*) FROM groups g WHERE g.directory_id = d.id)
FROM directories d;

CREATE FUNCTION count_directory_rows() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    sign BIGINT := CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;
    this_shard SMALLINT := (pg_backend_pid() % 16)::SMALLINT;
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        INSERT INTO directory_counts AS c (directory_id, shard, users)
        SELECT directory_id, this_shard, sign * count(*) FROM changed_rows GROUP BY directory_id
        ON CONFLICT (directory_id, shard) DO UPDATE SET users = c.users + excluded.users;
    ELSE
        INSERT INTO directory_counts AS c (directory_id, shard, groups)
        SELECT directory_id, this_shard, sign * count(*) FROM changed_rows GROUP BY directory_id
        ON CONFLICT (directory_id, shard) DO UPDATE SET groups = c.groups + excluded.groups;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_count_inserts AFTER INSERT ON users
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_directory_rows();
CREATE TRIGGER users_count_deletes AFTER DELETE ON users
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_directory_rows();
CREATE TRIGGER groups_count_inserts AFTER INSERT ON groups
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_directory_rows();
CREATE TRIGGER groups_count_deletes AFTER DELETE ON groups
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_directory_rows();

-- When a directory's key was last presented, to the minute: written at most
-- once a minute per key (see `auth`), so it costs SCIM traffic nothing.
ALTER TABLE directories ADD COLUMN key_last_used_at BIGINT;
