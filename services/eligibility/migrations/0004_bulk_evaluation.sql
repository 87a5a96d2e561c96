-- A full evaluation reads every household of the register, and each month rewrites its decisions.

-- The snapshot is read whole (to publish it inside a decision), never searched: kept as the JSON
-- text that was validated (json), which PostgreSQL returns as stored, rather than jsonb, which it
-- prints anew on every read.
ALTER TABLE households ALTER COLUMN snapshot TYPE json USING snapshot::json;

-- What deciding reads of a household beyond the columns above, compact (eligibility.household):
-- [locations, members], a location [effective_from, category], a member [member_id, date_of_birth,
-- has_disability, lives_with_hiv, in_school, joined_on, left_on]. A national run parses this, not
-- the whole snapshot (names and all) of 700,000 households.
ALTER TABLE households ADD COLUMN facts json;
UPDATE households SET facts = json_build_array(
    (SELECT json_agg(json_build_array(p->>'effective_from', p->>'category') ORDER BY i)
     FROM json_array_elements(snapshot->'location_history') WITH ORDINALITY AS l(p, i)),
    (SELECT coalesce(json_agg(json_build_array(
                m->>'member_id', m->>'date_of_birth', (m->>'has_disability')::boolean,
                (m->>'lives_with_hiv')::boolean, (m->>'in_school')::boolean, m->>'joined_on', m->>'left_on'
            ) ORDER BY i), '[]')
     FROM json_array_elements(snapshot->'members') WITH ORDINALITY AS e(m, i))
);
ALTER TABLE households ALTER COLUMN facts SET NOT NULL;

-- Decisions are rewritten in place when the month rolls over (a new payment key): room left on
-- every page lets PostgreSQL update them without touching the indexes (HOT updates).
ALTER TABLE decisions SET (fillfactor = 70);
