-- The relay deletes a row once the broker has acknowledged it (krousar_common.outbox), instead of
-- stamping sent_at: a delete writes no new row version and no index entry. Every row left is
-- unsent, so the primary key serves the relay's scan in id order, and nothing looks rows up by
-- event id (consumers deduplicate with their inbox).
DELETE FROM outbox WHERE sent_at IS NOT NULL;
DROP INDEX outbox_unsent;
ALTER TABLE outbox DROP CONSTRAINT outbox_event_id_key;
-- sent_at is no longer written; it stays (always NULL) for readers that still count unsent rows
-- as "sent_at IS NULL", and goes once none does.
