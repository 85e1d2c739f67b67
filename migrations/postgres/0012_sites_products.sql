-- Sites, their products, which groups grant access to them, the groups the
-- admin keeps in the org (not synced by SCIM), and the access that follows.

-- A site of the org (an Atlassian cloud site: `https://acme.atlassian.net`).
-- `url` is the normalised absolute URL; names are unique case-insensitively.
CREATE TABLE sites (
    id          UUID PRIMARY KEY,
    org_id      UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    name_ci     TEXT NOT NULL,
    url         TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX sites_org_name ON sites (org_id, name_ci);
CREATE UNIQUE INDEX sites_org_url ON sites (org_id, url);
CREATE INDEX sites_org_created ON sites (org_id, created_at, id);

-- A product of a site, by key (`jira-software`, `confluence`, …), with
-- whether new accounts join its default groups.
CREATE TABLE products (
    site_id               UUID NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    product_key           TEXT NOT NULL,
    new_users_get_access  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at            BIGINT NOT NULL,
    PRIMARY KEY (site_id, product_key)
);

-- A group the admin keeps in the org: never written by SCIM.
CREATE TABLE org_groups (
    id           UUID PRIMARY KEY,
    org_id       UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    name_ci      TEXT NOT NULL,
    description  TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
-- Also the look-up a SCIM group write makes to refuse a clashing name.
CREATE UNIQUE INDEX org_groups_org_name ON org_groups (org_id, name_ci);
CREATE INDEX org_groups_org_created ON org_groups (org_id, created_at, id);

CREATE TABLE org_group_members (
    group_id    UUID NOT NULL REFERENCES org_groups (id) ON DELETE CASCADE,
    account_id  UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    added_at    BIGINT NOT NULL,
    PRIMARY KEY (group_id, account_id)
);
CREATE INDEX org_group_members_account ON org_group_members (account_id);

-- The org groups new accounts join when the product's switch is on. Only
-- org groups: a SCIM group's members are the identity provider's.
CREATE TABLE product_default_groups (
    site_id      UUID NOT NULL,
    product_key  TEXT NOT NULL,
    group_id     UUID NOT NULL REFERENCES org_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (site_id, product_key, group_id),
    FOREIGN KEY (site_id, product_key) REFERENCES products (site_id, product_key) ON DELETE CASCADE
);
CREATE INDEX product_default_groups_group ON product_default_groups (group_id);

-- A group's access to a product with a role. The group is a SCIM group or
-- an org group, each column with its own cascade, so deleting either (by
-- SCIM, by the admin, with its directory) takes its grants with it.
CREATE TABLE product_grants (
    id             UUID PRIMARY KEY,
    site_id        UUID NOT NULL,
    product_key    TEXT NOT NULL,
    scim_group_id  UUID REFERENCES groups (id) ON DELETE CASCADE,
    org_group_id   UUID REFERENCES org_groups (id) ON DELETE CASCADE,
    role           TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    created_at     BIGINT NOT NULL,
    CHECK ((scim_group_id IS NULL) <> (org_group_id IS NULL)),
    FOREIGN KEY (site_id, product_key) REFERENCES products (site_id, product_key) ON DELETE CASCADE
);
CREATE UNIQUE INDEX product_grants_unique
    ON product_grants (site_id, product_key, COALESCE(scim_group_id, org_group_id), role);
CREATE INDEX product_grants_scim_group ON product_grants (scim_group_id)
    WHERE scim_group_id IS NOT NULL;
CREATE INDEX product_grants_org_group ON product_grants (org_group_id)
    WHERE org_group_id IS NOT NULL;

-- Who has access to what, and through which grant: computed by the sync
-- engine, account by account (a batch deletes its accounts' rows and
-- writes them again), read by the admin API. One row per account and
-- grant; the grant's site, product and role are repeated so both reads
-- are one index range. Removing a grant (or its group, product or site)
-- removes the access it gave by cascade.
CREATE TABLE effective_access (
    site_id      UUID NOT NULL,
    product_key  TEXT NOT NULL,
    account_id   UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    grant_id     UUID NOT NULL REFERENCES product_grants (id) ON DELETE CASCADE,
    org_id       UUID NOT NULL,
    role         TEXT NOT NULL,
    granted_at   BIGINT NOT NULL,
    -- When the row was last written: a batch removes its accounts' rows
    -- it did not write again.
    computed_at  BIGINT NOT NULL,
    PRIMARY KEY (site_id, product_key, account_id, grant_id)
);
CREATE INDEX effective_access_account ON effective_access (account_id);
CREATE INDEX effective_access_grant ON effective_access (grant_id);
