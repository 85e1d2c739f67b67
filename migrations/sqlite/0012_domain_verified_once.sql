-- A domain is verified by one organisation at a time: a second
-- organisation's check of a domain another one holds does not verify it.
CREATE UNIQUE INDEX domains_verified_once ON domains (name) WHERE status = 'verified';
