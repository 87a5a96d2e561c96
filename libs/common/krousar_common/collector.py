"""Python's cyclic garbage collector: paused around bulk work, tuned once a process has started."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# The default is (700, 10, 10). A worker process that only decides or calculates (no reference
# cycles) collects seldom. A service keeps the default between batches: young collections of
# 50,000 objects looked worse for the registration API's tail (p99 of the seconds without CPU steal
# 109 ms against 32 ms at the default, in alternating runs on the shared machine).
WORKER_THRESHOLDS = (200_000, 100, 100)


def settle(thresholds: tuple[int, int, int] | None = None) -> None:
    """For a process done starting: what it made so far (modules, the app, reference data) lives as
    long as it does, so the collector never scans it again (~100 ms a full collection for the
    registration service's 170,000 objects; 5-15 ms once frozen); then collect at ``thresholds``."""
    gc.freeze()
    if thresholds is not None:
        gc.set_threshold(*thresholds)


@contextmanager
def collector_paused() -> Iterator[None]:
    """For code that makes objects by the hundred thousand and no reference cycle (parsing an
    import, building a batch of rows, a consumed batch of events): the cyclic collector would only
    scan them again and again, up to half the time of such work. Reference counting still frees
    everything as usual. Pauses may overlap (threads, tasks): the collector runs again when the one
    that found it running ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
