-- Monitoring: when the registry event that queued a household happened (its CloudEvents time; NULL
-- when an enrolment, a payment or a retry queued it), so the decider can observe how long a change
-- in the registry takes to become a decision (krousar_eligibility_decision_latency_seconds).
ALTER TABLE pending ADD COLUMN event_time timestamptz;

-- The coverage funnel counts a programme's instructed and paid households for one payment.
CREATE INDEX payment_instructions_payment ON payment_instructions (programme_code, period);
