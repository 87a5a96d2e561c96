-- Projections: what payments needs from other services, kept from their events so that a run
-- never calls another service.

-- Every version of every programme (programmes.topups.v1); a run uses the latest ACTIVE one.
CREATE TABLE programme_versions (
    code         text        NOT NULL,
    version      int         NOT NULL,
    status       text        NOT NULL,
    definition   jsonb       NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (code, version)
);

-- The latest eligibility decision per programme and household (eligibility.decisions.v1), with
-- the household as it was decided on and its enrolment (payee). The snapshot is kept as plain
-- json text: a national run reads 700,000 of them and parses them straight into the model.
CREATE TABLE decisions (
    programme_code    text        NOT NULL,
    household_id      uuid        NOT NULL,
    programme_version int         NOT NULL,
    eligible          boolean     NOT NULL,
    reasons           text[]      NOT NULL,
    effective_on      date        NOT NULL,
    decided_at        timestamptz NOT NULL,
    household_version int         NOT NULL,
    province_code     text        NOT NULL,
    commune_code      text        NOT NULL,
    snapshot          json        NOT NULL,
    enrolment         jsonb,
    PRIMARY KEY (programme_code, household_id)
);

-- Runs: (programme, period or payment date), DRAFT → CALCULATED → APPROVED → INSTRUCTED → RECONCILED,
-- or CANCELLED before approval.
CREATE TABLE runs (
    run_id              uuid PRIMARY KEY,
    programme_code      text        NOT NULL,
    programme_version   int         NOT NULL,
    period              text        NOT NULL,
    rules_day           date        NOT NULL,
    available_from      date        NOT NULL,
    claim_until         date        NOT NULL,
    state               text        NOT NULL CHECK (
        state IN ('DRAFT', 'CALCULATED', 'APPROVED', 'INSTRUCTED', 'RECONCILED', 'CANCELLED')),
    budget_ceiling_riel bigint,
    households          int         NOT NULL DEFAULT 0,
    lines               int         NOT NULL DEFAULT 0,
    amount_riel         bigint      NOT NULL DEFAULT 0,
    households_left_out int         NOT NULL DEFAULT 0,
    totals              jsonb       NOT NULL DEFAULT '[]',
    left_out_reasons    jsonb       NOT NULL DEFAULT '{}',
    created_by          text        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    calculated_at       timestamptz,
    approved_by         text,
    approved_at         timestamptz,
    instructed_at       timestamptz,
    reconciled_at       timestamptz,
    cancelled_by        text,
    cancelled_at        timestamptz,
    cancel_reason       text,
    correlation_id      text        NOT NULL
);
-- One calculation per (programme, period) at a time: the database's last word behind the Redis lock.
CREATE UNIQUE INDEX runs_one_calculation ON runs (programme_code, period) WHERE state = 'DRAFT';
CREATE INDEX runs_by_programme ON runs (programme_code, period, created_at);

-- One line per (run, household, component), written once by the calculation; only its status
-- changes after: CALCULATED, then the PSP's final word (PAID, FAILED, UNCLAIMED), or CANCELLED
-- with its run. Never twice: at most one live line per (programme, period, household,
-- component); FAILED and CANCELLED lines leave room for a retry.
CREATE TABLE payment_lines (
    payment_id          uuid PRIMARY KEY,
    run_id              uuid        NOT NULL REFERENCES runs,
    programme_code      text        NOT NULL,
    period              text        NOT NULL,
    household_id        uuid        NOT NULL,
    component           text        NOT NULL,
    attempt             int         NOT NULL,
    amount_riel         bigint      NOT NULL CHECK (amount_riel > 0),
    terms               jsonb       NOT NULL,
    explanation         text        NOT NULL,
    province_code       text        NOT NULL,
    commune_code        text        NOT NULL,
    village_code        text        NOT NULL,
    location_category   text        NOT NULL,
    poverty_level       text        NOT NULL,
    payee_name          text        NOT NULL,
    channel             text        NOT NULL,
    account             text,
    status              text        NOT NULL CHECK (
        status IN ('CALCULATED', 'PAID', 'FAILED', 'UNCLAIMED', 'CANCELLED')),
    status_reason       text,
    status_at           timestamptz
);
CREATE UNIQUE INDEX payment_lines_never_twice ON payment_lines (programme_code, period, household_id, component)
    WHERE status IN ('CALCULATED', 'PAID', 'UNCLAIMED');
CREATE INDEX payment_lines_by_run ON payment_lines (run_id, payment_id);
CREATE INDEX payment_lines_by_household ON payment_lines (household_id);
CREATE INDEX payment_lines_open ON payment_lines (run_id, payment_id) WHERE status = 'CALCULATED';

-- The instruction of a line: appended (COPY) in the transaction that writes its PaymentInstructed
-- event to the outbox, never updated. Updating 700,000 wide, well-indexed line rows instead costs
-- ten times more. (No foreign key: the rows come from lines read in the same transaction, and a
-- per-row key check would double the cost of the COPY.)
CREATE TABLE instructions (
    payment_id     uuid PRIMARY KEY,
    run_id         uuid        NOT NULL,
    instruction_id uuid        NOT NULL UNIQUE,
    instructed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX instructions_by_run ON instructions (run_id, payment_id);

-- A line as people see it: CALCULATED lines already instructed are INSTRUCTED.
CREATE VIEW line_states AS
SELECT l.*, i.instruction_id, i.instructed_at,
       CASE WHEN l.status = 'CALCULATED' AND i.payment_id IS NOT NULL THEN 'INSTRUCTED' ELSE l.status END
           AS state
FROM payment_lines l LEFT JOIN instructions i USING (payment_id);

-- Households a run did not pay, and why (the answer to "why was this household not paid?").
CREATE TABLE left_out (
    run_id       uuid NOT NULL REFERENCES runs,
    household_id uuid NOT NULL,
    reason       text NOT NULL,
    detail       text,
    PRIMARY KEY (run_id, household_id)
);
CREATE INDEX left_out_by_household ON left_out (household_id);
