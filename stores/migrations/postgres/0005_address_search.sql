-- The users list's search (`q`: addresses containing a text, ASCII letters in any case;
-- stores/src/user_page_sql.rs) without reading every address of the batch: 481 ms at the 99th
-- percentile over 50,000 users before it (`loadtest bench api --state postgres`). The address
-- with its ASCII letters lowered is kept in a column, so a row is matched by a plain LIKE
-- (translate() on each row cost 3 µs, a third of a second for a batch), and a trigram index
-- answers the LIKE. pg_trgm ships with PostgreSQL (Debian's postgresql package has it) and is a
-- trusted extension: the service's role needs CREATE on its database, or an administrator runs
-- `CREATE EXTENSION pg_trgm` in it once, before the service starts.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE batch_users ADD COLUMN address_folded TEXT NOT NULL
    GENERATED ALWAYS AS (translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')) STORED;

CREATE INDEX batch_users_by_address_text ON batch_users USING gin (address_folded gin_trgm_ops);
