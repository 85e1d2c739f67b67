-- Lists are ordered by creation time then id within a directory; with this
-- index a page is read in order instead of sorting the whole directory.
CREATE INDEX users_directory_created ON users (directory_id, created_at, id);
CREATE INDEX groups_directory_created ON groups (directory_id, created_at, id);
