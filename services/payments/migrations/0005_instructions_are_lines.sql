-- A run's instructions are no longer copied, one outbox row and one instructions row a line, into
-- tables that the relay then empties again: a national run wrote 1.4 million rows and deleted
-- 700,000 to send 700,000 events. Lines are instructed in payment id order, so what is
-- instructed is a prefix of the run's lines, and one mark says where it ends (instructed_through,
-- moved by each instruction batch); the relay publishes the lines after published_through up to
-- it, building their events from the lines (payments.instruction.InstructedLines), and moves
-- published_through once the broker has them.
ALTER TABLE runs
    ADD COLUMN instructed_through uuid,
    ADD COLUMN published_through  uuid;

-- The event id of a line's PaymentInstructed: the same each time the relay builds the event.
CREATE FUNCTION instruction_id(payment_id uuid) RETURNS uuid
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT md5('krousar.PaymentInstructed:' || payment_id::text)::uuid $$;

-- Runs instructed before: their events are already in the outbox (with the ids they had then).
UPDATE runs r SET instructed_through = i.last, published_through = i.last
FROM (SELECT run_id, (array_agg(payment_id ORDER BY payment_id DESC))[1] AS last
      FROM instructions GROUP BY run_id) AS i
WHERE r.run_id = i.run_id;

DROP VIEW line_states;
DROP TABLE instructions;

-- A run's instructed lines: the instruction's time is the run's approval.
CREATE VIEW instructions AS
SELECT l.payment_id, l.run_id, instruction_id(l.payment_id) AS instruction_id, r.approved_at AS instructed_at,
       l.payment_id <= coalesce(r.published_through, '00000000-0000-0000-0000-000000000000') AS published
FROM payment_lines l JOIN runs r ON r.run_id = l.run_id
WHERE l.payment_id <= r.instructed_through;

-- A line as people see it: the PSP's word once it came; INSTRUCTED once instructed; else its status.
CREATE VIEW line_states AS
SELECT l.*,
       CASE WHEN l.payment_id <= r.instructed_through THEN instruction_id(l.payment_id) END AS instruction_id,
       CASE WHEN l.payment_id <= r.instructed_through THEN r.approved_at END AS instructed_at,
       o.reason AS status_reason, o.at AS status_at,
       coalesce(o.status, CASE WHEN l.status = 'CALCULATED' AND l.payment_id <= r.instructed_through
                               THEN 'INSTRUCTED' ELSE l.status END) AS state
FROM payment_lines l
JOIN runs r ON r.run_id = l.run_id
LEFT JOIN line_outcomes o ON o.payment_id = l.payment_id;
