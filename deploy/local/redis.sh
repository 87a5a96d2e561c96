#!/usr/bin/env bash
# Redis from the Debian package on 127.0.0.1:6379, data in .local/redis.
#   redis.sh start|stop|status
source "$(dirname "$0")/lib.sh"

PORT="${KROUSAR_REDIS_PORT:-6379}"
DIR="$STATE/redis"

start() {
  if is_running redis; then log "Redis already running"; return 0; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "port $PORT is taken by another Redis (stop it, e.g. 'service redis-server stop')"
  fi
  mkdir -p "$DIR"
  log "starting Redis on 127.0.0.1:$PORT"
  nohup redis-server --bind 127.0.0.1 --port "$PORT" --dir "$DIR" --save 60 1000 \
    --appendonly no --daemonize no --logfile "$LOGS/redis.log" >/dev/null 2>&1 &
  echo $! > "$RUN/redis.pid"
  wait_port 127.0.0.1 "$PORT" 30 Redis
}

case "${1:-start}" in
  start) start ;;
  stop) stop_pid redis 10 ;;
  status) is_running redis && echo "redis up" || echo "redis down" ;;
  *) die "usage: redis.sh start|stop|status" ;;
esac
