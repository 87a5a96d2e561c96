-- A national run reads every decision of a programme: it reads the household from these columns
-- and the compact ``facts`` (krousar_common.household_facts, the format eligibility's households
-- keep), not the whole snapshot (names and all) validated a second time. The snapshot stays, as
-- the record of what was decided on.
ALTER TABLE decisions
    ADD COLUMN status           text,
    ADD COLUMN village_code     text,
    ADD COLUMN district_code    text,
    ADD COLUMN poverty_level    text,
    ADD COLUMN female_headed    boolean,
    ADD COLUMN card_status      text,
    ADD COLUMN card_issued_on   date,
    ADD COLUMN card_valid_until date,
    ADD COLUMN card_number      text,   -- only to say why a card was not in force
    ADD COLUMN head_name        text,   -- the payee of a programme that needs no enrolment
    ADD COLUMN facts            json;

UPDATE decisions SET
    status = coalesce(snapshot->>'status', 'ACTIVE'),
    village_code = snapshot->>'village_code',
    district_code = snapshot->>'district_code',
    poverty_level = snapshot->>'poverty_level',
    female_headed = (snapshot->>'female_headed')::boolean,
    card_status = snapshot->'card'->>'status',
    card_issued_on = (snapshot->'card'->>'issued_on')::date,
    card_valid_until = (snapshot->'card'->>'valid_until')::date,
    card_number = snapshot->'card'->>'card_number',
    head_name = (SELECT m->>'name_km' FROM json_array_elements(snapshot->'members') AS e(m)
                 WHERE m->>'member_id' = snapshot->>'head_member_id' LIMIT 1),
    facts = json_build_array(
        (SELECT json_agg(json_build_array(p->>'effective_from', p->>'category') ORDER BY i)
         FROM json_array_elements(snapshot->'location_history') WITH ORDINALITY AS l(p, i)),
        (SELECT coalesce(json_agg(json_build_array(
                    m->>'member_id', m->>'date_of_birth',
                    coalesce((m->>'has_disability')::boolean, false),
                    coalesce((m->>'lives_with_hiv')::boolean, false),
                    coalesce((m->>'in_school')::boolean, false), m->>'joined_on', m->>'left_on'
                ) ORDER BY i), '[]')
         FROM json_array_elements(snapshot->'members') WITH ORDINALITY AS e(m, i))
    );

ALTER TABLE decisions
    ALTER COLUMN status SET NOT NULL,
    ALTER COLUMN village_code SET NOT NULL,
    ALTER COLUMN district_code SET NOT NULL,
    ALTER COLUMN female_headed SET NOT NULL,
    ALTER COLUMN facts SET NOT NULL;
