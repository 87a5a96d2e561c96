"""An uploaded file spooled to disk as it arrives, checked on the way (csv_format.UploadCheck)."""

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from registration.imports.csv_format import FileRejected, UploadCheck


@dataclass
class SpooledUpload:
    path: Path
    sha256: str  # of the body, for Idempotency-Key
    size: int
    owned_by_job: bool = False  # once an import job has it, the job deletes the file

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


async def spool(chunks: AsyncIterator[bytes], directory: Path | None) -> SpooledUpload:
    """The body written to a temporary file; FileRejected (and no file left) if it is unreadable."""
    check, digest = UploadCheck(), hashlib.sha256()
    descriptor, name = tempfile.mkstemp(prefix="krousar-import-", suffix=".csv", dir=directory)
    path = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as file:
            async for chunk in chunks:
                check.feed(chunk)
                digest.update(chunk)
                file.write(chunk)  # page cache: microseconds, not worth a thread per chunk
        if check.size == 0:
            raise FileRejected("the request body must be the CSV file")
        check.finish()
    except BaseException:
        os.unlink(path)
        raise
    return SpooledUpload(path, digest.hexdigest(), check.size)
