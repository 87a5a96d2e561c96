-- A line's arithmetic (its terms and explanation) is the same for every household of a run with
-- the same counts: a national run has some hundreds of them for 700,000 lines. Each is kept once
-- per run, in run_arithmetics, and a line names it; the lines were half arithmetic, and their
-- COPY cost PostgreSQL twice the time. (Per run, not shared between runs: two runs calculating at
-- once never wait on each other's rows.)
CREATE TABLE run_arithmetics (
    run_id        uuid  NOT NULL REFERENCES runs,
    arithmetic_id uuid  NOT NULL,  -- made from the terms and the explanation
    terms         jsonb NOT NULL,
    explanation   text  NOT NULL,
    PRIMARY KEY (run_id, arithmetic_id)
);
INSERT INTO run_arithmetics (run_id, arithmetic_id, terms, explanation)
SELECT DISTINCT run_id, md5(terms::text || '|' || explanation)::uuid, terms, explanation FROM payment_lines;

DROP VIEW line_states;
ALTER TABLE payment_lines ADD COLUMN arithmetic_id uuid;
UPDATE payment_lines SET arithmetic_id = md5(terms::text || '|' || explanation)::uuid;
ALTER TABLE payment_lines
    ALTER COLUMN arithmetic_id SET NOT NULL,
    DROP COLUMN terms,
    DROP COLUMN explanation,
    -- A foreign key checks each line on its own: a third of a national run's COPY went on looking
    -- up the same run 700,000 times. The trigger below checks a whole statement's lines at once.
    DROP CONSTRAINT payment_lines_run_id_fkey;

-- Every line written names its run and an arithmetic of that run: what the foreign keys said,
-- checked once a statement (a COPY of a page of lines) with one join.
CREATE FUNCTION check_line_references() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM written_lines l
               WHERE NOT EXISTS (SELECT FROM run_arithmetics a
                                 WHERE a.run_id = l.run_id AND a.arithmetic_id = l.arithmetic_id)) THEN
        RAISE foreign_key_violation USING
            MESSAGE = 'a payment line names no arithmetic of its run (run_arithmetics)';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER payment_lines_references AFTER INSERT ON payment_lines
    REFERENCING NEW TABLE AS written_lines FOR EACH STATEMENT EXECUTE FUNCTION check_line_references();

-- Runs are the record of what was paid: never deleted (the foreign key kept those with lines).
CREATE FUNCTION refuse_run_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE restrict_violation USING MESSAGE = 'runs are never deleted: cancel a run instead';
END
$$;
CREATE TRIGGER runs_never_deleted BEFORE DELETE ON runs FOR EACH STATEMENT EXECUTE FUNCTION refuse_run_deletion();

-- The guard of never twice compares codes byte by byte (the C collation): the same answer for
-- equality, at less cost for each of a run's 700,000 lines than the database's default collation.
DROP INDEX payment_lines_never_twice;
CREATE UNIQUE INDEX payment_lines_never_twice
    ON payment_lines (programme_code COLLATE "C", period COLLATE "C", household_id, component COLLATE "C")
    WHERE status = 'CALCULATED';

-- A line as people see it, with its arithmetic; the PSP's word once it came; INSTRUCTED once
-- instructed; else its status.
CREATE VIEW line_states AS
SELECT l.*, a.terms, a.explanation,
       CASE WHEN l.payment_id <= r.instructed_through THEN instruction_id(l.payment_id) END AS instruction_id,
       CASE WHEN l.payment_id <= r.instructed_through THEN r.approved_at END AS instructed_at,
       o.reason AS status_reason, o.at AS status_at,
       coalesce(o.status, CASE WHEN l.status = 'CALCULATED' AND l.payment_id <= r.instructed_through
                               THEN 'INSTRUCTED' ELSE l.status END) AS state
FROM payment_lines l
JOIN runs r ON r.run_id = l.run_id
JOIN run_arithmetics a ON a.run_id = l.run_id AND a.arithmetic_id = l.arithmetic_id
LEFT JOIN line_outcomes o ON o.payment_id = l.payment_id;
