-- The household snapshot (about 2 kB of JSON) compressed with lz4, as the outbox's payloads
-- (krousar_common/migrations/0003_outbox_lz4.sql says why).
ALTER TABLE households ALTER COLUMN snapshot SET COMPRESSION lz4;
