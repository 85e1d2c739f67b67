-- Listing a group's members shows each user's display name. With this index
-- the name comes from one index search per member instead of a search of
-- the primary-key index and then of the table, whose rows hold whole
-- documents: a 100,000-member group reads several times faster.
CREATE INDEX users_member_display ON users (id, display_name, user_name);
