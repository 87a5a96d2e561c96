"""A worker process does not outlive its service process, even one killed with -9."""

import signal
import subprocess
import sys
import time

SERVICE = """
import os
from krousar_common import worker_processes

if __name__ == "__main__":
    executor = worker_processes.pool(1)
    print(executor.submit(os.getpid).result(), flush=True)
    input()  # until killed
"""


def alive(pid: int) -> bool:
    """Running (a zombie is not: it has exited, and waits for whoever adopted it to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_worker_exits_when_its_service_is_killed() -> None:
    service = subprocess.Popen(
        [sys.executable, "-c", SERVICE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert service.stdout is not None
        worker = int(service.stdout.readline())
        assert alive(worker)
    finally:
        service.send_signal(signal.SIGKILL)
        service.wait(10)
    deadline = time.monotonic() + 10
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(worker), "the worker outlived its service"
