-- Documents kept whole and never searched: PostgreSQL's ANALYZE need not build statistics of
-- their values. It did, and those of the assessments' two jsonb columns cost 0.85 CPU s for
-- 11,000 assessments (30,000 sampled at national size), taken from the registration API while
-- its tables grow (autovacuum analyzes them every 10 % of growth): a second of p99 in seconds.
ALTER TABLE assessments ALTER COLUMN items SET STATISTICS 0, ALTER COLUMN answers SET STATISTICS 0;
ALTER TABLE audit_log ALTER COLUMN details SET STATISTICS 0;
ALTER TABLE imports ALTER COLUMN errors SET STATISTICS 0;
