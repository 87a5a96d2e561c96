-- The PSP's final word on a line is appended to line_outcomes instead of written over the line:
-- an update of the wide, well-indexed line row (its status is in index predicates, so no update
-- is HOT) cost three times the insert of a narrow row. The first word wins (the primary key: a
-- later one inserts nothing). A line keeps its never-twice slot when paid or unclaimed, so the
-- line row changes only when it gives the slot up: FAILED (for a retry) or CANCELLED.
CREATE TABLE line_outcomes (
    payment_id uuid PRIMARY KEY,
    status     text        NOT NULL CHECK (status IN ('PAID', 'FAILED', 'UNCLAIMED')),
    reason     text,
    at         timestamptz NOT NULL
);
INSERT INTO line_outcomes (payment_id, status, reason, at)
SELECT payment_id, status, status_reason, coalesce(status_at, now())
FROM payment_lines WHERE status IN ('PAID', 'FAILED', 'UNCLAIMED');

DROP VIEW line_states;
UPDATE payment_lines SET status = 'CALCULATED' WHERE status IN ('PAID', 'UNCLAIMED');
ALTER TABLE payment_lines
    DROP CONSTRAINT payment_lines_status_check,
    ADD CONSTRAINT payment_lines_status_check CHECK (status IN ('CALCULATED', 'FAILED', 'CANCELLED')),
    DROP COLUMN status_reason,
    DROP COLUMN status_at;
DROP INDEX payment_lines_never_twice;
CREATE UNIQUE INDEX payment_lines_never_twice ON payment_lines (programme_code, period, household_id, component)
    WHERE status = 'CALCULATED';
-- Instruction reads the run's lines by payment_lines_by_run; the gauges read line_tallies.
DROP INDEX payment_lines_open;
DROP INDEX payment_lines_by_period;

-- Instructions are looked up by run and payment (a status names both) and appended in payment id
-- order within a run: one index, filled at its end.
ALTER TABLE instructions
    DROP CONSTRAINT instructions_pkey,
    DROP CONSTRAINT instructions_instruction_id_key,
    ADD PRIMARY KEY (run_id, payment_id);
DROP INDEX instructions_by_run;

-- A line as people see it: the PSP's word once it came; INSTRUCTED once instructed; else its status.
CREATE VIEW line_states AS
SELECT l.*, i.instruction_id, i.instructed_at, o.reason AS status_reason, o.at AS status_at,
       coalesce(o.status, CASE WHEN l.status = 'CALCULATED' AND i.payment_id IS NOT NULL THEN 'INSTRUCTED'
                               ELSE l.status END) AS state
FROM payment_lines l
LEFT JOIN instructions i ON i.run_id = l.run_id AND i.payment_id = l.payment_id
LEFT JOIN line_outcomes o ON o.payment_id = l.payment_id;

-- Lines and riel of each run by province and state (as line_states says), kept as the lines
-- change: every statement that moves lines appends what it moved (+n to the new state, -n from
-- the old), in its own transaction, so a sum is exact and nothing waits on a shared counter. The
-- gauges and the reconciliation job read the sums instead of counting a national run's 700,000
-- lines; a reconciled run's rows are summed into one per (province, state).
CREATE TABLE line_tallies (
    run_id        uuid   NOT NULL,
    province_code text   NOT NULL,
    state         text   NOT NULL,
    lines         bigint NOT NULL,
    amount_riel   bigint NOT NULL
);
CREATE INDEX line_tallies_by_run ON line_tallies (run_id);
INSERT INTO line_tallies (run_id, province_code, state, lines, amount_riel)
SELECT run_id, province_code, state, count(*), sum(amount_riel) FROM line_states GROUP BY 1, 2, 3;
