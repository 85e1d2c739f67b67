-- How many users and groups each directory holds, kept by triggers so that
-- the console's overview reads a few small rows instead of counting
-- millions on every load. SQLite has one writer, so one row (shard 0) per
-- directory; the shard column keeps the table the same as PostgreSQL's.
--
-- No foreign key: a directory's deletion removes its users by cascade, and
-- their triggers write here while the directory row is already gone.
-- `delete_directory` clears the rows afterwards; readers join `directories`.
CREATE TABLE directory_counts (
    directory_id BLOB NOT NULL,
    shard        INTEGER NOT NULL,
    users        BIGINT NOT NULL DEFAULT 0,
    groups       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (directory_id, shard)
);

INSERT INTO directory_counts (directory_id, shard, users, groups)
SELECT d.id, 0,
       (SELECT count(*) FROM users u WHERE u.directory_id = d.id),
       (SELECT count(*) FROM groups g WHERE g.directory_id = d.id)
FROM directories d;

CREATE TRIGGER users_count_inserts AFTER INSERT ON users BEGIN
    INSERT INTO directory_counts (directory_id, shard, users) VALUES (NEW.directory_id, 0, 1)
    ON CONFLICT (directory_id, shard) DO UPDATE SET users = users + 1;
END;
CREATE TRIGGER users_count_deletes AFTER DELETE ON users BEGIN
    INSERT INTO directory_counts (directory_id, shard, users) VALUES (OLD.directory_id, 0, -1)
    ON CONFLICT (directory_id, shard) DO UPDATE SET users = users - 1;
END;
CREATE TRIGGER groups_count_inserts AFTER INSERT ON groups BEGIN
    INSERT INTO directory_counts (directory_id, shard, groups) VALUES (NEW.directory_id, 0, 1)
    ON CONFLICT (directory_id, shard) DO UPDATE SET groups = groups + 1;
END;
CREATE TRIGGER groups_count_deletes AFTER DELETE ON groups BEGIN
    INSERT INTO directory_counts (directory_id, shard, groups) VALUES (OLD.directory_id, 0, -1)
    ON CONFLICT (directory_id, shard) DO UPDATE SET groups = groups - 1;
END;

-- When a directory's key was last presented, to the minute: written at most
-- once a minute per key (see `auth`), so it costs SCIM traffic nothing.
ALTER TABLE directories ADD COLUMN key_last_used_at BIGINT;
