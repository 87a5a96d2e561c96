-- A decision's enrolment is read whole, never searched: ANALYZE need not build statistics of its
-- jsonb values (as registration's 0003 for its documents: costly, and useless to the planner).
ALTER TABLE decisions ALTER COLUMN enrolment SET STATISTICS 0;
