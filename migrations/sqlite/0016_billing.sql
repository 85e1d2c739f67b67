-- Billing leaves an org's inactive accounts out of each product's
-- accounts and out of its total: this index finds them without reading
-- every account of the org. Only inactive accounts are in it, so creating
-- an (active) account writes nothing more.
CREATE INDEX accounts_org_inactive ON accounts (org_id, id) WHERE active = FALSE;
