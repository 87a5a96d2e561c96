-- Transactional outbox: a service writes its state change and the events it publishes in one
-- transaction; the relay publishes rows in id order and marks them sent.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    event_id    uuid        NOT NULL UNIQUE,
    topic       text        NOT NULL,
    key         text        NOT NULL,
    event_type  text        NOT NULL,
    payload     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- Inbox: ids of events a consumer has applied, written in the same transaction as the effect,
-- so a redelivered event is a no-op.
CREATE TABLE inbox (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
