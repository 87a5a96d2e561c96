-- Bulk imports of an IDPoor round: one row per uploaded file, with its outcome and row errors.
CREATE TABLE imports (
    import_id           uuid PRIMARY KEY,
    file_name           text        NOT NULL,
    status              text        NOT NULL CHECK (status IN ('RUNNING', 'SUCCEEDED', 'REJECTED', 'INTERRUPTED', 'FAILED')),
    households_total    int,
    households_imported int         NOT NULL DEFAULT 0,
    households_rejected int         NOT NULL DEFAULT 0,
    errors              jsonb       NOT NULL DEFAULT '[]',
    message             text,
    created_by          text        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz
);
