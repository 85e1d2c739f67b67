-- Groups that are members of groups, found without reading every
-- membership: the sync engine's continuous path reads a directory's
-- nesting at each change, and users are nearly all of the rows.
CREATE INDEX group_members_nested ON group_members (group_id, member_id)
    WHERE member_type = 'Group';

-- The limit the last run applied, which the continuous path checks a
-- group's new size against.
ALTER TABLE sync_state ADD COLUMN group_user_limit BIGINT NOT NULL DEFAULT 10000;
