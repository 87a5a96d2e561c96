"""Worker processes for a service's CPU-bound bulk work (Python runs on one core a process).

Spawned, not forked: the service process has an event loop, client connections and threads. A
worker only computes (no reference cycles: the collector seldom runs), and exits when the service
process is gone: a service killed with -9 leaves no worker waiting on its queue for ever.
"""

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from krousar_common import collector


def pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_started
    )


def _started() -> None:
    collector.settle(collector.WORKER_THRESHOLDS)
    threading.Thread(target=_exit_with, args=(os.getppid(),), name="exit-with-parent", daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:  # an orphan is adopted by another process
        time.sleep(1)
    os._exit(0)
