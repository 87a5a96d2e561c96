"""Event contracts: the envelope, every event model, its topic and its schema version.

The registry (``EVENT_TYPES``, ``make_envelope``, ``decode``) lives in ``registry.py`` and is
loaded on first use: event models import the programme and benefit modules, which import the
household models of this package, so an eager import here would be circular.
"""

from typing import Any

from krousar_common.events.envelope import Envelope, InvalidEvent

_REGISTRY_NAMES = {
    "EVENT_TYPES",
    "EventType",
    "decode",
    "envelope_of",
    "make_envelope",
    "register",
    "type_of",
}


def __getattr__(name: str) -> Any:
    if name in _REGISTRY_NAMES:
        from krousar_common.events import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["EVENT_TYPES", "Envelope", "EventType", "InvalidEvent", "decode", "make_envelope", "register"]
