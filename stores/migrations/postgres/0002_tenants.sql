-- Tenants (ARCHITECTURE.md, "Tenants"): every endpoint, batch and user belongs to one, names are
-- unique per tenant, and the rows written before tenants become the default tenant's. Tenants,
-- API tokens (their SHA-256 only) and the audit log beside them. Times are RFC 3339 text in UTC,
-- as in SQLite, so both stores read them the same way.

ALTER TABLE batch_users DROP CONSTRAINT batch_users_batch_fkey;
ALTER TABLE batch_users DROP CONSTRAINT batch_users_batch_position_key;

ALTER TABLE endpoints ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE batches ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE batch_users ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';

ALTER TABLE endpoints DROP CONSTRAINT endpoints_pkey, ADD PRIMARY KEY (tenant, name);
ALTER TABLE batches DROP CONSTRAINT batches_pkey, ADD PRIMARY KEY (tenant, name);
ALTER TABLE batch_users
    DROP CONSTRAINT batch_users_pkey,
    ADD PRIMARY KEY (tenant, batch, email),
    ADD UNIQUE (tenant, batch, position),
    ADD FOREIGN KEY (tenant, batch) REFERENCES batches (tenant, name) ON DELETE CASCADE;

CREATE TABLE tenants (
    name   TEXT PRIMARY KEY,
    record JSONB NOT NULL
);
INSERT INTO tenants (name, record) VALUES ('default', jsonb_build_object(
    'name', 'default',
    'created_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')));

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    -- NULL for a provider token.
    tenant     TEXT,
    role       TEXT NOT NULL,
    label      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    -- Lowercase hex SHA-256 of the token's text; the text itself is never stored.
    hash       TEXT NOT NULL
);

CREATE TABLE audit (
    id      BIGSERIAL PRIMARY KEY,
    at      TEXT NOT NULL,
    tenant  TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL
);
CREATE INDEX audit_by_tenant ON audit (tenant, id);
