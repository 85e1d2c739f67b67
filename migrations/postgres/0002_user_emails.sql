-- Every email of every user, lowercased, so `emails.value eq "…"` (how
-- identity providers find existing users) is an index lookup rather than a
-- scan of each user's JSON document.
CREATE TABLE user_emails (
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    directory_id UUID NOT NULL,
    value_ci     TEXT NOT NULL,
    PRIMARY KEY (user_id, value_ci)
);
CREATE INDEX user_emails_directory_value ON user_emails (directory_id, value_ci);

INSERT INTO user_emails (user_id, directory_id, value_ci)
SELECT DISTINCT u.id, u.directory_id, lower(e.value ->> 'value')
FROM users u, jsonb_array_elements(
    CASE WHEN jsonb_typeof(u.doc -> 'emails') = 'array' THEN u.doc -> 'emails' ELSE '[]'::jsonb END
) AS e(value)
WHERE e.value ->> 'value' IS NOT NULL;
