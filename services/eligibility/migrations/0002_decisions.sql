-- Eligibility: the household projection grows the columns coverage needs; programme and payment
-- projections; owned state (enrolments, conditions); decisions and what drives them.

ALTER TABLE households
    ADD COLUMN village_code     text,
    ADD COLUMN district_code    text,
    ADD COLUMN female_headed    boolean,
    ADD COLUMN card_status      text,
    ADD COLUMN card_issued_on   date,
    ADD COLUMN card_valid_until date;
UPDATE households SET
    village_code = snapshot->>'village_code',
    district_code = snapshot->>'district_code',
    female_headed = (snapshot->>'female_headed')::boolean,
    card_status = snapshot->'card'->>'status',
    card_issued_on = (snapshot->'card'->>'issued_on')::date,
    card_valid_until = (snapshot->'card'->>'valid_until')::date;
ALTER TABLE households
    ALTER COLUMN village_code SET NOT NULL,
    ALTER COLUMN district_code SET NOT NULL,
    ALTER COLUMN female_headed SET NOT NULL;
CREATE INDEX households_province ON households (province_code, household_id);
DROP INDEX households_commune;
CREATE INDEX households_commune ON households (commune_code, household_id);

-- The latest published version of each programme (ACTIVE, or CLOSED once closed).
CREATE TABLE programmes (
    code        text PRIMARY KEY,
    version     int         NOT NULL,
    kind        text        NOT NULL,
    status      text        NOT NULL,
    definition  jsonb       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Who was paid what (payments.instructions.v1 joined with payments.status.v1), for exclusions.
CREATE TABLE payment_instructions (
    payment_id     uuid PRIMARY KEY,
    household_id   uuid NOT NULL,
    programme_code text NOT NULL,
    period         text NOT NULL
);
CREATE INDEX payment_instructions_household ON payment_instructions (household_id);
CREATE TABLE payment_statuses (
    payment_id   uuid PRIMARY KEY,
    household_id uuid        NOT NULL,
    status       text        NOT NULL,
    reported_at  timestamptz NOT NULL
);
CREATE INDEX payment_statuses_household ON payment_statuses (household_id);

-- Owned state: the commune's verification of identity and payee. One ACTIVE per household.
CREATE TABLE enrolments (
    enrolment_id    uuid PRIMARY KEY,
    household_id    uuid        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('ACTIVE', 'WITHDRAWN', 'REPLACED')),
    payee_type      text        NOT NULL CHECK (payee_type IN ('HEAD', 'PROXY')),
    payee_name      text        NOT NULL,
    payee_member_id uuid,
    channel         text        NOT NULL,
    account         text,
    identity_document text      NOT NULL,
    verified_by     text        NOT NULL,
    verified_on     date        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz,
    ended_by        text,
    end_reason      text,
    replaced_by     uuid REFERENCES enrolments
);
CREATE UNIQUE INDEX enrolments_one_active ON enrolments (household_id) WHERE status = 'ACTIVE';
CREATE INDEX enrolments_household ON enrolments (household_id, created_at);

-- Owned state: PWYC conditions verified by health facilities, every one kept (extras rejected).
CREATE TABLE conditions (
    event_id         uuid PRIMARY KEY,
    household_id     uuid        NOT NULL,
    kind             text        NOT NULL,
    occurred_on      date        NOT NULL,
    subject_id       uuid        NOT NULL,
    facility_code    text        NOT NULL,
    babies           int         NOT NULL DEFAULT 1,
    accepted         boolean     NOT NULL,
    rejection_reason text,
    rejection_detail text,
    amount_riel      bigint      NOT NULL DEFAULT 0,
    recorded_by      text        NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conditions_household ON conditions (household_id, occurred_on);

-- The current decision per (household, programme). ``fingerprint`` holds what, when it changes,
-- is published again (see eligibility/evaluation.py).
CREATE TABLE decisions (
    household_id      uuid        NOT NULL,
    programme_code    text        NOT NULL,
    programme_version int         NOT NULL,
    payment_key       text,
    eligible          boolean     NOT NULL,
    reasons           text[]      NOT NULL,
    amount_riel       bigint      NOT NULL,
    effective_on      date        NOT NULL,
    fingerprint       text        NOT NULL,
    decided_at        timestamptz NOT NULL DEFAULT now(),
    changed_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (household_id, programme_code)
);
CREATE INDEX decisions_programme ON decisions (programme_code, household_id);

-- Households whose decisions must be made again (a new snapshot, enrolment, condition or payment).
-- Append-only, no unique key: writers never wait on each other; the decider drains it.
CREATE TABLE pending (
    id           bigserial PRIMARY KEY,
    household_id uuid NOT NULL
);
INSERT INTO pending (household_id) SELECT household_id FROM households;

-- The day decisions are made for: follows the calendar, or held at a day by an operator.
CREATE TABLE clock (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    day       date        NOT NULL,
    held      boolean     NOT NULL,
    set_by    text        NOT NULL,
    set_at    timestamptz NOT NULL DEFAULT now()
);

-- Full (re-)evaluations: daily, on a programme version, or asked for by an operator.
CREATE TABLE evaluation_runs (
    run_id            uuid PRIMARY KEY,
    programmes        text[],  -- NULL: every programme
    reason            text        NOT NULL,
    requested_by      text        NOT NULL,
    requested_at      timestamptz NOT NULL DEFAULT now(),
    status            text        NOT NULL DEFAULT 'PENDING'
                      CHECK (status IN ('PENDING', 'RUNNING', 'DONE', 'FAILED')),
    on_day            date,
    started_at        timestamptz,
    finished_at       timestamptz,
    households        int         NOT NULL DEFAULT 0,
    decisions_changed int         NOT NULL DEFAULT 0,
    error             text
);
CREATE INDEX evaluation_runs_pending ON evaluation_runs (requested_at) WHERE status IN ('PENDING', 'RUNNING');
