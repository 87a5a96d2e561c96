"""Programme catalogue events (topic ``programmes.topups.v1``, key = programme code)."""

from pydantic import BaseModel

from krousar_common.programmes import ProgrammeVersion


class ProgrammeVersionPublished(BaseModel):
    """A version of a programme was written (created, edited, seeded, activated, superseded or
    closed): the whole version travels, as stored. Only an ACTIVE version is in force."""

    programme: ProgrammeVersion
