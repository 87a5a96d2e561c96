"""Business errors of the payments service (rendered as problem+json by krousar_common.errors)."""

from krousar_common.errors import Conflict, Forbidden, InvalidInput, NotFound


class RunNotFound(NotFound):
    pass


class WrongState(Conflict):
    title = "Run is not in a state that allows this"


class CalculationRunning(Conflict):
    title = "A calculation of this programme and period is running"


class SameApprover(Forbidden):
    title = "Maker-checker: the creator of a run cannot approve it"


class OverBudget(InvalidInput):
    title = "Run total exceeds the programme's budget ceiling"


class UnknownProgramme(InvalidInput):
    title = "Programme not payable"


class NotExportable(Conflict):
    title = "Run not approved"
