-- The programme catalogue: every version of every programme, routine (seeded) or top-up (API).
-- A version's definition is the ProgrammeVersion JSON; status and version live in columns and
-- are authoritative (the definition is rendered with them when read or published).
CREATE TABLE programme_versions (
    code          text        NOT NULL,
    version       int         NOT NULL CHECK (version >= 1),
    kind          text        NOT NULL CHECK (kind IN ('ROUTINE', 'TOPUP')),
    status        text        NOT NULL CHECK (status IN ('DRAFT', 'ACTIVE', 'CLOSED')),
    origin        text        NOT NULL CHECK (origin IN ('SEED', 'API')),
    definition    jsonb       NOT NULL,
    superseded_by int,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text        NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    text        NOT NULL,
    activated_at  timestamptz,
    activated_by  text,
    closed_at     timestamptz,
    closed_by     text,
    PRIMARY KEY (code, version)
);
-- At most one version in force and one being prepared per programme.
CREATE UNIQUE INDEX programme_versions_one_active ON programme_versions (code) WHERE status = 'ACTIVE';
CREATE UNIQUE INDEX programme_versions_one_draft ON programme_versions (code) WHERE status = 'DRAFT';
