"""What every route module shares: roles and the use-case context."""

from typing import Annotated

from fastapi import Request
from krousar_common.auth import ROLES, Principal, require_roles

from eligibility import service

Reader = Annotated[Principal, require_roles(*ROLES)]
CommuneStaff = Annotated[Principal, require_roles("commune_staff", "registry_admin")]
HealthStaff = Annotated[Principal, require_roles("health_staff")]
Operator = Annotated[Principal, require_roles("programme_manager", "registry_admin")]


def context(request: Request, principal: Principal) -> service.Context:
    return service.Context(principal, request.state.correlation_id, request.app.state.settings)
