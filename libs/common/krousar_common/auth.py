"""JWT bearer auth (HS256) with roles and commune scope.

Claims: ``sub`` (user id), ``roles`` (list), ``communes`` (commune codes a commune_staff user may
write and read in; a province code ``PP`` grants all its communes), ``exp``. Every other role reads
households everywhere.
"""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from krousar_common.errors import Forbidden, Unauthorized

ALGORITHM = "HS256"
ROLES = (
    "commune_staff",
    "registry_admin",
    "viewer",
    "programme_manager",
    "health_staff",
    "payment_operator",
    "payment_approver",
)

_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class Principal:
    user_id: str
    roles: frozenset[str]
    communes: frozenset[str] = field(default_factory=frozenset)

    def has_any(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))

    def covers_commune(self, commune_code: str) -> bool:
        return commune_code in self.communes or commune_code[:2] in self.communes

    def ensure_commune(self, commune_code: str) -> None:
        """Registry admins act anywhere; commune staff only in their communes."""
        if "registry_admin" in self.roles or self.covers_commune(commune_code):
            return
        raise Forbidden(f"user {self.user_id} may not write in commune {commune_code}")

    @property
    def read_scope(self) -> frozenset[str] | None:
        """The commune and province codes whose households this principal may read; None: all.
        Only commune staff are held to their communes: any other role reads everywhere."""
        return None if (self.roles & set(ROLES)) - {"commune_staff"} else self.communes

    def ensure_reads(self, *area_codes: str | None) -> None:
        """Each area given (province, district, commune or village code) must overlap the read scope."""
        scope = self.read_scope
        for area in area_codes:
            if scope is None or area is None or any(area.startswith(c) or c.startswith(area) for c in scope):
                continue
            raise Forbidden(f"user {self.user_id} may not read households in {area}")


def mint_token(
    secret: str, *, user_id: str, roles: list[str], communes: list[str] | None = None, ttl: timedelta
) -> str:
    now = datetime.now(UTC)
    claims = {"sub": user_id, "roles": roles, "communes": communes or [], "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


# Tokens already verified, with their expiry: a client sends the same token with every request
# of its session, and checking its signature again cost a tenth of a registration's CPU.
_verified: dict[tuple[str, str], tuple[Principal, float]] = {}
VERIFIED_KEPT = 4096


def decode_token(secret: str, token: str) -> Principal:
    known = _verified.get((secret, token))
    if known is not None:
        principal, expires = known
        if time.time() < expires:
            return principal
        raise Unauthorized("token expired")
    principal, expires = _verify(secret, token)
    if len(_verified) >= VERIFIED_KEPT:
        _verified.clear()
    _verified[(secret, token)] = (principal, expires)
    return principal


def _verify(secret: str, token: str) -> tuple[Principal, float]:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"invalid token: {exc}") from exc
    principal = Principal(
        user_id=str(claims["sub"]),
        roles=frozenset(claims.get("roles", [])),
        communes=frozenset(claims.get("communes", [])),
    )
    return principal, float(claims["exp"])


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None:
        raise Unauthorized("missing bearer token")
    return decode_token(request.app.state.settings.jwt_secret, credentials.credentials)


def require_roles(*roles: str):
    """Dependency: the caller must hold one of ``roles``."""

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.has_any(*roles):
            raise Forbidden(f"requires one of the roles: {', '.join(roles)}")
        return principal

    return Depends(dependency)
