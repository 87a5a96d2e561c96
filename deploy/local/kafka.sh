#!/usr/bin/env bash
# Apache Kafka in KRaft mode from the Maven Central jars (see deploy/local/kafka/pom.xml).
#   kafka.sh start|stop|status      KAFKA_NODES=1 (default) or 3 for a local three-broker cluster.
#   kafka.sh stop-all               every broker of every set started here (any NODES and BASE port).
# Node i listens on BASE+2(i-1) (broker) and the next port (controller). BASE is 9092 for the
# single broker and 19092 for the cluster, so both can run at once; data in .local/kafka-<id>/.
source "$(dirname "$0")/lib.sh"

NODES="${KAFKA_NODES:-1}"
if [[ "$NODES" -ge 3 ]]; then BASE_PORT="${KAFKA_BASE_PORT:-19092}"; else BASE_PORT="${KAFKA_BASE_PORT:-9092}"; fi
HEAP="${KAFKA_HEAP:-512m}"
LIB="$ROOT/.cache/kafka/lib"
ID="$NODES-$BASE_PORT"
DIR="$STATE/kafka-$ID"   # every broker set keeps its own data

broker_port() { echo $((BASE_PORT + 2 * ($1 - 1))); }
controller_port() { echo $((BASE_PORT + 2 * ($1 - 1) + 1)); }

bootstrap_servers() {
  local b=() i
  for i in $(seq "$NODES"); do b+=("127.0.0.1:$(broker_port "$i")"); done
  (IFS=,; echo "${b[*]}")
}

voters() {
  local v=() i
  for i in $(seq "$NODES"); do v+=("$i@127.0.0.1:$(controller_port "$i")"); done
  (IFS=,; echo "${v[*]}")
}

write_properties() {
  local i="$1" rf=$((NODES < 3 ? 1 : 3)) isr=$((NODES < 3 ? 1 : 2))
  cat > "$DIR/node$i.properties" <<PROPS
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$(voters)
listeners=PLAINTEXT://127.0.0.1:$(broker_port "$i"),CONTROLLER://127.0.0.1:$(controller_port "$i")
advertised.listeners=PLAINTEXT://127.0.0.1:$(broker_port "$i"),CONTROLLER://127.0.0.1:$(controller_port "$i")
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DIR/data$i
auto.create.topics.enable=false
num.partitions=12
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=$((NODES < 3 ? 1 : 12))
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
PROPS
}

format_storage() {
  local i="$1"
  [[ -f "$DIR/data$i/meta.properties" ]] && return 0
  [[ -f "$DIR/cluster.id" ]] || java -cp "$LIB/*" kafka.tools.StorageTool random-uuid > "$DIR/cluster.id"
  java -cp "$LIB/*" kafka.tools.StorageTool format -t "$(cat "$DIR/cluster.id")" \
    -c "$DIR/node$i.properties" >> "$LOGS/kafka-$ID-node$i.log" 2>&1
}

start_node() {
  local i="$1"
  local name="kafka-$ID-node$i"
  if is_running "$name"; then log "$name already running"; return 0; fi
  write_properties "$i"
  format_storage "$i"
  log "starting $name on 127.0.0.1:$(broker_port "$i")"
  nohup java "-Xms$HEAP" "-Xmx$HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dkafka.logs.dir="$LOGS" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$LIB/*" kafka.Kafka "$DIR/node$i.properties" \
    >> "$LOGS/$name.log" 2>&1 &
  echo $! > "$RUN/$name.pid"
}

case "${1:-start}" in
  start)
    [[ -d "$LIB" ]] || die "Kafka jars missing: run deploy/local/install.sh"
    mkdir -p "$DIR"
    for i in $(seq "$NODES"); do start_node "$i"; done
    for i in $(seq "$NODES"); do wait_port 127.0.0.1 "$(broker_port "$i")" 90 "kafka node $i"; done
    "$VENV/bin/python" -m krousar_common.cli kafka-wait --bootstrap "$(bootstrap_servers)" --brokers "$NODES" ;;
  stop)
    for i in $(seq "$NODES"); do stop_pid "kafka-$ID-node$i" 60; done ;;
  stop-all)  # e.g. a chaos test's own broker left running by an interrupted test run
    for pidfile in "$RUN"/kafka-*-node*.pid; do
      if [[ -e "$pidfile" ]]; then stop_pid "$(basename "$pidfile" .pid)" 60; fi
    done ;;
  stop-node)
    stop_pid "kafka-$ID-node$2" 60 ;;
  start-node)
    start_node "$2"; wait_port 127.0.0.1 "$(broker_port "$2")" 90 "kafka node $2" ;;
  status)
    for i in $(seq "$NODES"); do is_running "kafka-$ID-node$i" && echo "kafka node $i up" || echo "kafka node $i down"; done ;;
  *) die "usage: kafka.sh start|stop|stop-all|status|start-node N|stop-node N" ;;
esac
