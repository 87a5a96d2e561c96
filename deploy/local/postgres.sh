#!/usr/bin/env bash
# PostgreSQL from the Debian package, our own cluster in .local/pg on 127.0.0.1:5432.
#   postgres.sh start|stop|status|clean
source "$(dirname "$0")/lib.sh"

PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[[ -n "$PGBIN" ]] || die "PostgreSQL binaries missing: run deploy/local/install.sh"
PGDATA="$STATE/pg"
PGPORT="${KROUSAR_PG_PORT:-5432}"
DATABASES=(registration eligibility topups payments psp_simulator)

# PostgreSQL refuses to run as root: as root we run it as the Debian 'postgres' user.
as_owner() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

init_cluster() {
  [[ -f "$PGDATA/PG_VERSION" ]] && return 0
  log "initialising cluster in $PGDATA"
  mkdir -p "$PGDATA"
  [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$PGDATA"
  as_owner "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  cat >> "$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$PGDATA'
max_connections = 300
shared_buffers = 512MB
work_mem = 16MB
maintenance_work_mem = 256MB
max_wal_size = 4GB
checkpoint_timeout = 15min
CONF
}

create_databases() {
  for db in "${DATABASES[@]}"; do
    if [[ -z "$(as_owner "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'")" ]]; then
      as_owner "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres "$db"
      log "created database $db"
    fi
  done
}

start() {
  init_cluster
  if ! as_owner "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    if (exec 3<>"/dev/tcp/127.0.0.1/$PGPORT") 2>/dev/null; then
      die "port $PGPORT is taken by another PostgreSQL (stop it, e.g. 'pg_ctlcluster 15 main stop')"
    fi
    log "starting PostgreSQL on 127.0.0.1:$PGPORT"
    touch "$LOGS/postgres.log"; [[ $(id -u) -eq 0 ]] && chown postgres "$LOGS/postgres.log"
    as_owner "$PGBIN/pg_ctl" -D "$PGDATA" -l "$LOGS/postgres.log" -w -t 60 start >/dev/null
  else
    log "PostgreSQL already running"
  fi
  head -1 "$PGDATA/postmaster.pid" > "$RUN/postgres.pid"
  create_databases
}

stop() {
  if [[ -f "$PGDATA/postmaster.pid" ]]; then
    as_owner "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null && log "PostgreSQL stopped"
  fi
  rm -f "$RUN/postgres.pid"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) as_owner "$PGBIN/pg_ctl" -D "$PGDATA" status ;;
  *) die "usage: postgres.sh start|stop|restart|status" ;;
esac
