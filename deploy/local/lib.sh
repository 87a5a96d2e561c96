# Shared helpers for the local stack scripts. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${KROUSAR_STATE_DIR:-$ROOT/.local}"
RUN="$STATE/run"
LOGS="$STATE/log"
VENV="$ROOT/.venv"
mkdir -p "$RUN" "$LOGS"

log() { printf '\033[1;34m[%s]\033[0m %s\n' "$(basename "$0" .sh)" "$*"; }
die() { printf '\033[1;31m[%s] %s\033[0m\n' "$(basename "$0" .sh)" "$*" >&2; exit 1; }

# is_running NAME: true when RUN/NAME.pid names a live process.
is_running() {
  local pidfile="$RUN/$1.pid"
  [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# stop_pid NAME [TIMEOUT]: SIGTERM the process of RUN/NAME.pid, SIGKILL after TIMEOUT s.
stop_pid() {
  local name="$1" timeout="${2:-20}" pidfile="$RUN/$1.pid" pid
  [[ -f "$pidfile" ]] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq $((timeout * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in ${timeout}s, killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
  log "$name stopped"
}

# wait_port HOST PORT TIMEOUT NAME: wait until a TCP port accepts connections.
wait_port() {
  local host="$1" port="$2" timeout="$3" name="$4"
  for _ in $(seq $((timeout * 10))); do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  die "$name not listening on $host:$port after ${timeout}s"
}
