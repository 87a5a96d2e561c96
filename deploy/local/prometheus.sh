#!/usr/bin/env bash
# Prometheus from the Debian package on 127.0.0.1:9090, scraping the services with
# deploy/prometheus/prometheus.yml (rules in deploy/prometheus/rules/); data in .local/prometheus.
#   prometheus.sh start|stop|restart|status|reload
source "$(dirname "$0")/lib.sh"

PORT="${KROUSAR_PROMETHEUS_PORT:-9090}"
DIR="$STATE/prometheus"
CONFIG="$ROOT/deploy/prometheus/prometheus.yml"

wait_ready() {
  for _ in $(seq 300); do
    if curl -fsS "http://127.0.0.1:$PORT/-/ready" >/dev/null 2>&1; then return 0; fi
    is_running prometheus || die "Prometheus exited: see $LOGS/prometheus.log"
    sleep 0.1
  done
  die "Prometheus not ready after 30s: see $LOGS/prometheus.log"
}

start() {
  if is_running prometheus; then log "Prometheus already running"; return 0; fi
  command -v prometheus >/dev/null || die "prometheus missing: run deploy/local/install.sh"
  # The Debian package starts its own daemon on 9090 unless told not to (install.sh tells it).
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "port $PORT is taken by another Prometheus (stop it, e.g. 'service prometheus stop')"
  fi
  promtool check config "$CONFIG" >/dev/null || die "invalid $CONFIG: run 'promtool check config $CONFIG'"
  mkdir -p "$DIR"
  log "starting Prometheus on 127.0.0.1:$PORT"
  # Lifecycle API on: `prometheus.sh reload` picks up edited rules without losing data.
  nohup prometheus --config.file="$CONFIG" --storage.tsdb.path="$DIR" \
    --storage.tsdb.retention.time=15d --web.listen-address="127.0.0.1:$PORT" --web.enable-lifecycle \
    >> "$LOGS/prometheus.log" 2>&1 &
  echo $! > "$RUN/prometheus.pid"
  wait_ready
}

reload() {
  is_running prometheus || die "Prometheus is not running"
  curl -fsS -X POST "http://127.0.0.1:$PORT/-/reload" >/dev/null && log "configuration reloaded"
}

case "${1:-start}" in
  start) start ;;
  stop) stop_pid prometheus 20 ;;
  restart) stop_pid prometheus 20; start ;;
  reload) reload ;;
  status) is_running prometheus && echo "prometheus up (http://127.0.0.1:$PORT)" || echo "prometheus down" ;;
  *) die "usage: prometheus.sh start|stop|restart|status|reload" ;;
esac
