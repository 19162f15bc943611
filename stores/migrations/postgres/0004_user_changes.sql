-- Every write of a user takes a change number from one sequence (never reused, so it outlives
-- removed batches); put_users locks the batch's row, so one batch's writers take turns and its
-- numbers grow in commit order. The API's event stream asks for a batch's users changed after
-- the last number it saw, instead of reading every user each second (StateStore::
-- users_changed_after). Existing rows are numbered as the column is added.

CREATE SEQUENCE batch_user_changes;

ALTER TABLE batch_users
    ADD COLUMN changed BIGINT NOT NULL DEFAULT nextval('batch_user_changes');

CREATE INDEX batch_users_by_change ON batch_users (tenant, batch, changed);
