"""SQL of eligibility: one function per query, the connection first, never a commit.

Bulk paths (loading a batch of households, writing changed decisions) take and return whole
batches: one round trip per batch, never one per household. Callers use ``store.<function>``;
the functions live in one module per table group.
"""

from eligibility.store.decisions import *  # noqa: F403
from eligibility.store.enrolments import *  # noqa: F403
from eligibility.store.households import *  # noqa: F403
from eligibility.store.payments import *  # noqa: F403
from eligibility.store.programmes import *  # noqa: F403
from eligibility.store.runs import *  # noqa: F403
