#!/usr/bin/env bash
# The Krousar services as local processes: one uvicorn each, on the ports of krousar_common/ports.py.
#   services.sh start|stop|status
source "$(dirname "$0")/lib.sh"

# name:port, read from the one place ports are defined.
mapfile -t SERVICES < <("$VENV/bin/python" -c \
  'from krousar_common.ports import SERVICE_PORTS as p; print("\n".join(f"{k}:{v}" for k, v in p.items()))')

start_one() {
  local name="$1" port="$2"
  [[ -f "$ROOT/services/$name/$name/app.py" ]] || { log "$name: not built yet, skipped"; return 0; }
  if is_running "$name"; then log "$name already running"; return 0; fi
  log "starting $name on 127.0.0.1:$port"
  cd "$ROOT"
  nohup "$VENV/bin/uvicorn" "$name.app:create_app" --factory --host 127.0.0.1 --port "$port" \
    --no-access-log --log-level warning >> "$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
}

wait_ready() {
  local name="$1" port="$2"
  [[ -f "$RUN/$name.pid" ]] || return 0
  for _ in $(seq 600); do
    if curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1; then return 0; fi
    is_running "$name" || die "$name exited: see $LOGS/$name.log"
    sleep 0.1
  done
  die "$name not ready after 60s: see $LOGS/$name.log"
}

case "${1:-start}" in
  start)
    for entry in "${SERVICES[@]}"; do start_one "${entry%%:*}" "${entry##*:}"; done
    for entry in "${SERVICES[@]}"; do wait_ready "${entry%%:*}" "${entry##*:}"; done ;;
  stop)
    for entry in "${SERVICES[@]}"; do stop_pid "${entry%%:*}" 30; done ;;
  status)
    for entry in "${SERVICES[@]}"; do
      name="${entry%%:*}"; is_running "$name" && echo "$name up (port ${entry##*:})" || echo "$name down"
    done ;;
  urls)
    for entry in "${SERVICES[@]}"; do
      name="${entry%%:*}"; is_running "$name" && printf '  %-14s http://127.0.0.1:%s/docs\n' "$name" "${entry##*:}"
    done ;;
  *) die "usage: services.sh start|stop|status|urls" ;;
esac
