"""Pausing Python's cyclic garbage collector around bulk work."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """For code that makes objects by the hundred thousand and no reference cycle (parsing an
    import, building a batch of rows): the cyclic collector would only scan them again and again,
    up to half the time of such work. Reference counting still frees everything as usual. Pauses
    may overlap (threads, tasks): the collector runs again when the one that found it running ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
