#!/usr/bin/env bash
# The whole local stack in one place, used by the Makefile.
#   stack.sh infra    install what is missing; start PostgreSQL, Redis, Kafka (+ topics)
#   stack.sh up       infra + all services, then print where everything is
#   stack.sh down     stop everything this project started
#   stack.sh clean    down + remove all data
source "$(dirname "$0")/lib.sh"
HERE="$(dirname "$0")"

infra() {
  "$HERE/install.sh"
  "$HERE/postgres.sh" start
  "$HERE/redis.sh" start
  "$HERE/kafka.sh" start
  "$VENV/bin/krousar" create-topics
  [[ -x "$HERE/prometheus.sh" ]] && "$HERE/prometheus.sh" start || true
}

urls() {
  echo
  echo "Krousar is up. API docs:"
  "$HERE/services.sh" urls
  echo "  Kafka          127.0.0.1:9092    PostgreSQL 127.0.0.1:5432 (user postgres)    Redis 127.0.0.1:6379"
  is_running prometheus && echo "  Prometheus     http://127.0.0.1:9090"
  echo "  Logs           $LOGS/"
  echo "  A dev token:   .venv/bin/krousar mint-token --user me --role commune_staff --commune 120101"
}

down() {
  "$HERE/services.sh" stop
  [[ -x "$HERE/prometheus.sh" ]] && "$HERE/prometheus.sh" stop || true
  "$HERE/kafka.sh" stop-all
  "$HERE/redis.sh" stop
  "$HERE/postgres.sh" stop
}

case "${1:-up}" in
  infra) infra ;;
  up) infra; "$HERE/services.sh" start; urls ;;
  down) down ;;
  clean) down; rm -rf "$STATE"; log "removed $STATE" ;;
  *) die "usage: stack.sh infra|up|down|clean" ;;
esac
