-- The IDPoor registry. Nothing is ever deleted: withdrawal, deaths and moves are statuses/dates.

CREATE TABLE village_classifications (
    village_code   text        NOT NULL,
    effective_from date        NOT NULL,
    category       text        NOT NULL CHECK (category IN ('PHNOM_PENH', 'OTHER_URBAN', 'RURAL')),
    reason         text        NOT NULL,
    decided_by     text        NOT NULL,
    decided_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (village_code, effective_from)
);

CREATE TABLE households (
    household_id        uuid PRIMARY KEY,
    village_code        text        NOT NULL,
    commune_code        text        NOT NULL,
    district_code       text        NOT NULL,
    province_code       text        NOT NULL,
    interviewed_on      date        NOT NULL,
    identification_mode text        NOT NULL CHECK (identification_mode IN ('ROUND', 'ON_DEMAND')),
    round_no            int,
    questionnaire       text        NOT NULL CHECK (questionnaire IN ('RURAL', 'URBAN')),
    status              text        NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'WITHDRAWN')),
    withdrawn_reason    text,
    possible_duplicate  boolean     NOT NULL DEFAULT false,
    head_member_id      uuid        NOT NULL,
    poverty_level       text        CHECK (poverty_level IN ('POOR_1', 'POOR_2', 'NOT_POOR')),
    version             int         NOT NULL DEFAULT 1,
    registered_at       timestamptz NOT NULL DEFAULT now(),
    registered_by       text        NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    updated_by          text        NOT NULL
);
CREATE INDEX households_village ON households (village_code, household_id);
CREATE INDEX households_commune ON households (commune_code, household_id);
CREATE INDEX households_province ON households (province_code, household_id);

CREATE TABLE members (
    member_id              uuid PRIMARY KEY,
    household_id           uuid    NOT NULL REFERENCES households,
    name_km                text    NOT NULL,
    name_latin             text,
    sex                    text    NOT NULL CHECK (sex IN ('M', 'F')),
    date_of_birth          date    NOT NULL,
    dob_estimated          boolean NOT NULL DEFAULT false,
    relationship           text    NOT NULL,
    national_id            text    CHECK (national_id ~ '^[0-9]{9}$'),
    has_disability         boolean NOT NULL DEFAULT false,
    disability_card_no     text,
    lives_with_hiv         boolean NOT NULL DEFAULT false,
    is_pregnant            boolean NOT NULL DEFAULT false,
    expected_delivery_date date,
    in_school              boolean NOT NULL DEFAULT false,
    joined_on              date,
    joined_reason          text,
    left_on                date,
    left_reason            text,
    -- true while the member is present in an ACTIVE household: the national ID rule applies to those.
    active                 boolean NOT NULL DEFAULT true
);
CREATE INDEX members_household ON members (household_id);
-- Last guard of DOMAIN.md §2: a person cannot sit in two active households.
CREATE UNIQUE INDEX members_national_id_active ON members (national_id) WHERE active AND national_id IS NOT NULL;
CREATE INDEX members_head_lookup ON members (name_km, date_of_birth) WHERE relationship = 'HEAD' AND active;

-- Every assessment is kept; the household's current one is the latest.
CREATE TABLE assessments (
    assessment_id    uuid PRIMARY KEY,
    household_id     uuid        NOT NULL REFERENCES households,
    assessed_on      date        NOT NULL,
    scoring_model    text        NOT NULL,
    score            int         NOT NULL,
    model_level      text        NOT NULL,
    final_level      text        NOT NULL,
    items            jsonb       NOT NULL,
    answers          jsonb       NOT NULL,
    adjustment       text CHECK (adjustment IN ('UP', 'DOWN')),
    adjustment_reason text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text        NOT NULL
);
CREATE INDEX assessments_household ON assessments (household_id, created_at);

CREATE TABLE village_card_sequences (
    village_code text PRIMARY KEY,
    last_seq     int NOT NULL
);

CREATE TABLE cards (
    card_number   text PRIMARY KEY,
    household_id  uuid        NOT NULL REFERENCES households,
    assessment_id uuid        NOT NULL REFERENCES assessments,
    status        text        NOT NULL CHECK (status IN ('ACTIVE', 'EXPIRED', 'REVOKED', 'REPLACED')),
    issued_on     date        NOT NULL,
    valid_until   date        NOT NULL,
    status_reason text,
    replaced_by   text REFERENCES cards,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_until >= issued_on)
);
-- One ACTIVE card per household at a time.
CREATE UNIQUE INDEX cards_one_active ON cards (household_id) WHERE status = 'ACTIVE';
CREATE INDEX cards_active_expiry ON cards (valid_until) WHERE status = 'ACTIVE';
CREATE INDEX cards_household ON cards (household_id, created_at);

-- Who did what and when, per household (never personal data in details).
CREATE TABLE audit_log (
    id           bigserial PRIMARY KEY,
    household_id uuid        NOT NULL,
    action       text        NOT NULL,
    actor        text        NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    version      int         NOT NULL,
    details      jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_household ON audit_log (household_id, id);
