-- A directory's own request rate (token bucket: requests per second and
-- burst), set through the admin API. NULL: the server's default applies.
-- Both are set or neither.
ALTER TABLE directories
    ADD COLUMN rate_limit_per_second INTEGER,
    ADD COLUMN rate_limit_burst INTEGER,
    ADD CONSTRAINT directories_rate_limit_whole
        CHECK ((rate_limit_per_second IS NULL) = (rate_limit_burst IS NULL));
