-- A page of a batch's users and its counts without reading every user (stores/src/
-- user_page_sql.rs): the items beside the state as columns, generated from the record, and
-- indexes for the state filter (address order), the state order and the counts (CSV order,
-- with the items), and the items orders (with the state, for the filter). Text is ordered by
-- bytes (COLLATE "C"), as the queries order it.

ALTER TABLE batch_users
    ADD COLUMN items_synced BIGINT GENERATED ALWAYS AS ((record ->> 'items_synced')::bigint) STORED,
    ADD COLUMN items_skipped BIGINT GENERATED ALWAYS AS ((record ->> 'items_skipped')::bigint) STORED;

CREATE INDEX batch_users_by_email ON batch_users (tenant, batch, email COLLATE "C");
CREATE INDEX batch_users_by_state ON batch_users (tenant, batch, state, email COLLATE "C");
CREATE INDEX batch_users_by_state_position
    ON batch_users (tenant, batch, state COLLATE "C", position) INCLUDE (items_synced, items_skipped);
CREATE INDEX batch_users_by_items_synced
    ON batch_users (tenant, batch, items_synced, position) INCLUDE (state);
CREATE INDEX batch_users_by_items_skipped
    ON batch_users (tenant, batch, items_skipped, position) INCLUDE (state);
