#!/usr/bin/env bash
# Installs whatever the local stack is missing: Debian packages, the Python venv, Kafka jars.
# Every step is skipped when its result is already there.
source "$(dirname "$0")/lib.sh"

APT_PACKAGES=(postgresql redis-server prometheus)

install_apt() {
  local missing=()
  command -v pg_ctl >/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v java >/dev/null || missing+=(default-jdk-headless)
  command -v mvn >/dev/null || missing+=(maven)
  ((${#missing[@]})) || return 0
  log "apt-get install ${missing[*]}"
  local sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -q
  # policy-rc.d 101 keeps the packages from starting their own daemons: we run our own.
  echo 'exit 101' | $sudo tee /usr/sbin/policy-rc.d >/dev/null; $sudo chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
  $sudo rm -f /usr/sbin/policy-rc.d
}

install_venv() {
  local stamp="$VENV/.installed"
  local inputs=("$ROOT/requirements.txt" "$ROOT"/libs/*/pyproject.toml "$ROOT"/services/*/pyproject.toml)
  if [[ -f "$stamp" ]] && [[ -z "$(find "${inputs[@]}" -newer "$stamp" 2>/dev/null)" ]]; then return 0; fi
  log "creating Python venv in $VENV"
  [[ -x "$VENV/bin/python" ]] || python3.11 -m venv "$VENV" || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q uv==0.13.8
  local editable=()
  for dir in "$ROOT"/libs/* "$ROOT"/services/*; do [[ -f "$dir/pyproject.toml" ]] && editable+=(-e "$dir"); done
  "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" -r "$ROOT/requirements.txt" "${editable[@]}"
  touch "$stamp"
}

install_kafka() {
  local lib="$ROOT/.cache/kafka/lib" stamp="$ROOT/.cache/kafka/.installed"
  [[ -f "$stamp" && ! "$ROOT/deploy/local/kafka/pom.xml" -nt "$stamp" ]] && return 0
  log "fetching Kafka jars from Maven Central into $lib"
  rm -rf "$lib"; mkdir -p "$lib"
  (cd "$ROOT/deploy/local/kafka" && mvn -B -q \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$lib")
  touch "$stamp"
}

install_apt
install_venv
install_kafka
