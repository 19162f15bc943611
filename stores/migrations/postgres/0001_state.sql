-- The state store (stores/src/postgres_state.rs): each record a JSONB document, so the domain
-- types gain fields without a migration each, beside real columns for what is looked up,
-- ordered or compared: names, batch, email, CSV position, state, row version.

CREATE TABLE endpoints (
    name   TEXT PRIMARY KEY,
    record JSONB NOT NULL
);

CREATE TABLE batches (
    name    TEXT PRIMARY KEY,
    state   TEXT NOT NULL,
    -- Optimistic concurrency: a write names the version it read (UPDATE … WHERE version = $n).
    version BIGINT NOT NULL,
    record  JSONB NOT NULL
);

CREATE TABLE batch_users (
    batch    TEXT NOT NULL REFERENCES batches (name) ON DELETE CASCADE,
    email    TEXT NOT NULL,
    -- The CSV order; users added later continue it.
    position INTEGER NOT NULL,
    state    TEXT NOT NULL,
    version  BIGINT NOT NULL,
    record   JSONB NOT NULL,
    PRIMARY KEY (batch, email),
    UNIQUE (batch, position)
);
