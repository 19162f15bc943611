-- The users list's search (`q`: addresses containing a text, ASCII letters in any case;
-- stores/src/user_page_sql.rs) from a trigram index instead of reading every address of the
-- batch: 481 ms at the 99th percentile over 50,000 users before it (`loadtest bench api
-- --state postgres`). pg_trgm ships with PostgreSQL (Debian's postgresql package has it) and is
-- a trusted extension: the service's role needs CREATE on its database, or an administrator
-- runs `CREATE EXTENSION pg_trgm` in it once, before the service starts.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX batch_users_by_address_text ON batch_users
    USING gin (translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') gin_trgm_ops);
