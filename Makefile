# Krousar — two commands on a fresh machine: `make up` and `make test`.
SHELL := /bin/bash
STACK := deploy/local/stack.sh
PY := .venv/bin/python

.PHONY: up down clean infra install test test-unit lint format bench bench-import bench-api bench-payments bench-eligibility bench-national bench-inbox schemas

up:            ## install what is missing, start the stack and every service, print the URLs
	@$(STACK) up

down:          ## stop everything `make up` or `make test` started
	@$(STACK) down

clean:         ## stop everything and delete all local data (.local/)
	@$(STACK) clean

infra:         ## install what is missing and start PostgreSQL, Redis and Kafka only
	@$(STACK) infra

install:       ## install what is missing (apt packages, venv, Kafka jars), start nothing
	@deploy/local/install.sh

test: infra    ## every test: unit and integration, against the real stack
	@.venv/bin/pytest -q -p no:cacheprovider

test-unit: install  ## pure-logic tests only (no services needed)
	@.venv/bin/pytest -q -m "not integration" libs services

lint:
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .

format:
	@.venv/bin/ruff format . && .venv/bin/ruff check --fix .

schemas: install  ## write the JSON Schema of every event to docs/events/
	@.venv/bin/krousar write-event-schemas --out docs/events

HOUSEHOLDS ?= 100000
bench: infra   ## benchmarks at the sizes the issues name; results in docs/benchmarks.md
	@.venv/bin/python -m bench.bench_import --households 100000
	@.venv/bin/python -m bench.bench_eligibility --households 700000
	@.venv/bin/python -m bench.bench_api --rate 200 --seconds 30
	@.venv/bin/python -m bench.bench_payments --households 705487
	@.venv/bin/python -m bench.bench_national --households 705487

bench-import: infra  ## only the bulk import benchmark (HOUSEHOLDS=100000)
	@.venv/bin/python -m bench.bench_import --households $(HOUSEHOLDS)

bench-api: infra  ## the registration API at 200 registrations/s for 30 s
	@.venv/bin/python -m bench.bench_api --rate 200 --seconds 30

bench-payments: infra  ## a national payment run (705,487 households) through reconciliation
	@.venv/bin/python -m bench.bench_payments --households 705487

bench-eligibility: infra  ## full re-evaluation of 700,000 households, and registration → decision delay
	@.venv/bin/python -m bench.bench_eligibility --households 700000

bench-national: infra  ## the national caseload (705,487 households) from import to a reconciled run, beside the floor
	@.venv/bin/python -m bench.bench_national --households 705487

bench-inbox: infra  ## 2,000,000 inbox claims with random against time-ordered event ids
	@.venv/bin/python -m bench.bench_inbox --events 2000000
