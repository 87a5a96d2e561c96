-- Eligibility's own projection of the registry, built from registry.households.v1 only.
CREATE TABLE households (
    household_id  uuid PRIMARY KEY,
    version       int         NOT NULL,
    province_code text        NOT NULL,
    commune_code  text        NOT NULL,
    poverty_level text,
    status        text        NOT NULL,
    snapshot      jsonb       NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX households_commune ON households (commune_code);
