-- A directory's own request rate (token bucket: requests per second and
-- burst), set through the admin API. NULL: the server's default applies.
ALTER TABLE directories ADD COLUMN rate_limit_per_second INTEGER;
ALTER TABLE directories ADD COLUMN rate_limit_burst INTEGER;
