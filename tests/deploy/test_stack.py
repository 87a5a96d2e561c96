"""deploy/local/stack.sh down stops every Kafka broker set kafka.sh can start (the default broker,
the three-broker cluster, a chaos test's own broker on any port), by their pid files. It runs on a
state directory of its own (KROUSAR_STATE_DIR) whose pid files name stand-in processes, so the
running stack is not touched: every stop in the scripts goes through a pid file or a data folder
under the state directory."""

import os
import subprocess
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "deploy" / "local"
BROKERS = [  # every naming kafka.sh uses: kafka-<nodes>-<base port>-node<i>
    "kafka-1-9092-node1",
    "kafka-3-19092-node1",
    "kafka-3-19092-node2",
    "kafka-3-19092-node3",
    "kafka-1-29092-node1",
    "kafka-1-24816-node1",
]


def stand_in(run: Path, name: str) -> subprocess.Popen[bytes]:
    """A process with a pid file, as the scripts write them; reaped as soon as it ends (a zombie
    would still answer kill -0 and keep stop_pid waiting)."""
    process = subprocess.Popen(["sleep", "300"])
    threading.Thread(target=process.wait, daemon=True).start()
    (run / f"{name}.pid").write_text(f"{process.pid}\n")
    return process


def script(state: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(LOCAL / command[0]), *command[1:]],
        env={**os.environ, "KROUSAR_STATE_DIR": str(state)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_down_stops_every_broker_set_and_nothing_it_did_not_start(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    brokers = [stand_in(run, name) for name in BROKERS]
    stranger = stand_in(run, "kafka-ui")  # a pid file no script of ours writes
    try:
        down = script(tmp_path, "stack.sh", "down")

        assert down.returncode == 0, down.stdout + down.stderr
        assert sorted(p.name for p in run.iterdir()) == ["kafka-ui.pid"], "brokers left running"
        for process in brokers:
            process.wait(timeout=10)
        assert stranger.poll() is None
    finally:
        for process in [*brokers, stranger]:
            process.kill()


def test_stopping_brokers_that_were_never_started_is_harmless(tmp_path: Path) -> None:
    for command in (["kafka.sh", "stop-all"], ["kafka.sh", "stop"], ["stack.sh", "down"]):
        done = script(tmp_path, *command)
        assert done.returncode == 0, (command, done.stdout + done.stderr)
