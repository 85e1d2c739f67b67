-- Listing a group's members shows each user's display name. With this index
-- the name can come from an index-only scan instead of a heap fetch of the
-- row, which holds the whole document.
CREATE INDEX users_member_display ON users (id) INCLUDE (display_name, user_name);
