-- Run once by the postgres image on an empty data volume (/docker-entrypoint-initdb.d).
-- One database per service (ARCHITECTURE.md, "Stores"); each service applies its own
-- migrations on start-up. Keep in step with DATABASES in deploy/local/postgres.sh (tests/deploy checks).
CREATE DATABASE registration;
CREATE DATABASE eligibility;
CREATE DATABASE topups;
CREATE DATABASE payments;
CREATE DATABASE psp_simulator;
