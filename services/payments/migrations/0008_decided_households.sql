-- The household each decision was made on, kept once per household version: a household's three
-- programmes and every re-decision of it while it is unchanged (an evaluation adding enrolments)
-- share one copy. Each decision row used to carry its own 2.5 KB snapshot, which a national
-- evaluation rewrote 2.1 million times. Kept as the record of what was decided on; a run reads
-- the decision's own columns and facts.
CREATE TABLE decided_households (
    household_id uuid NOT NULL,
    version      int  NOT NULL,
    snapshot     json NOT NULL,
    PRIMARY KEY (household_id, version)
);
ALTER TABLE decided_households ALTER COLUMN snapshot SET STATISTICS 0;

INSERT INTO decided_households (household_id, version, snapshot)
SELECT DISTINCT ON (household_id, household_version) household_id, household_version, snapshot
FROM decisions
ORDER BY household_id, household_version, decided_at DESC;

ALTER TABLE decisions DROP COLUMN snapshot;
