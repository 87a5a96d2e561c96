-- The lines of one (programme, period) by run, province and status, with their riel, read from the
-- index alone: the period gauges (payments/metrics.py) count a national payment's 700,000 lines
-- every minute without touching the wide line rows.
CREATE INDEX IF NOT EXISTS payment_lines_by_period ON payment_lines (programme_code, period, run_id, province_code, status)
    INCLUDE (amount_riel);
