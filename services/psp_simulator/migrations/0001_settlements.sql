-- What the simulated PSP was instructed to pay, the outcome it drew for each payment, and when it
-- reports it. One row per payment id: an instruction the PSP already holds is never paid twice.
CREATE TABLE settlements (
    payment_id            uuid PRIMARY KEY,
    run_id                uuid        NOT NULL,
    household_id          uuid        NOT NULL,
    amount_riel           bigint      NOT NULL,
    status                text        NOT NULL CHECK (status IN ('PAID', 'FAILED', 'UNCLAIMED')),
    reason                text,
    report_twice          boolean     NOT NULL,
    due_at                timestamptz NOT NULL,
    reported_at           timestamptz,
    received_at           timestamptz NOT NULL DEFAULT now(),
    -- Instruction events received for this payment id (distinct event ids: the inbox drops
    -- redeliveries of the same event). More than 1 means the payer instructed a payment twice.
    instructions_received int         NOT NULL DEFAULT 1
);
CREATE INDEX settlements_due ON settlements (due_at) WHERE reported_at IS NULL;
