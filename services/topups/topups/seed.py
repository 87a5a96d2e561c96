"""The routine programmes' definitions: JSON files, one per programme version."""

from collections.abc import Iterable
from pathlib import Path

from krousar_common.programmes import ProgrammeVersion, load_programme


def seed_files(folders: Iterable[Path]) -> list[Path]:
    """Every ``*.json`` directly in the folders (``examples/`` below them are not seeds)."""
    return [path for folder in folders for path in sorted(folder.glob("*.json"))]


def load_seed(folders: Iterable[Path]) -> list[ProgrammeVersion]:
    """The seed definitions in the order they must be applied: by code, then version."""
    programmes = [load_programme(path) for path in seed_files(folders)]
    return sorted(programmes, key=lambda p: (p.code, p.version))
