-- Adding 10,000 members to a group checked the group's row once per member
-- (a quarter of the statement's time). Members are only written by a
-- transaction that has written or locked (`FOR UPDATE`) the group's row
-- first, which already keeps the group there until it commits. The foreign
-- key's other half, deleting a deleted group's members (directly or through
-- its directory), is kept by one trigger per statement.
ALTER TABLE group_members DROP CONSTRAINT group_members_group_id_fkey;

CREATE FUNCTION delete_members_of_deleted_groups() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM group_members WHERE group_id IN (SELECT id FROM deleted_groups);
    RETURN NULL;
END
$$;

CREATE TRIGGER groups_delete_members AFTER DELETE ON groups
    REFERENCING OLD TABLE AS deleted_groups
    FOR EACH STATEMENT EXECUTE FUNCTION delete_members_of_deleted_groups();
