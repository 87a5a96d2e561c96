import time
from datetime import timedelta

import pytest
from krousar_common import auth
from krousar_common.auth import Principal, decode_token, mint_token
from krousar_common.errors import Forbidden, Unauthorized

SECRET = "test-secret-of-at-least-thirty-two-bytes!"


def test_token_round_trip_keeps_roles_and_communes() -> None:
    token = mint_token(
        SECRET, user_id="u1", roles=["commune_staff"], communes=["120101"], ttl=timedelta(hours=1)
    )

    principal = decode_token(SECRET, token)

    assert principal == Principal("u1", frozenset({"commune_staff"}), frozenset({"120101"}))


def test_expired_and_forged_tokens_are_rejected() -> None:
    expired = mint_token(SECRET, user_id="u1", roles=["viewer"], ttl=timedelta(seconds=-1))
    forged = mint_token(
        "another-secret-of-at-least-thirty-two-bytes", user_id="u1", roles=["viewer"], ttl=timedelta(hours=1)
    )

    with pytest.raises(Unauthorized, match="expired"):
        decode_token(SECRET, expired)
    with pytest.raises(Unauthorized, match="invalid"):
        decode_token(SECRET, forged)


def test_a_token_verified_before_is_rejected_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    token = mint_token(SECRET, user_id="u2", roles=["viewer"], ttl=timedelta(minutes=5))
    assert decode_token(SECRET, token).user_id == "u2"  # verified, and remembered

    later = time.time() + 301
    monkeypatch.setattr(auth.time, "time", lambda: later)
    with pytest.raises(Unauthorized, match="expired"):
        decode_token(SECRET, token)
    with pytest.raises(Unauthorized, match="invalid"):  # remembered under its own secret only
        decode_token("another-secret-of-at-least-thirty-two-bytes", token)


def test_commune_scope() -> None:
    staff = Principal("u1", frozenset({"commune_staff"}), frozenset({"120101", "05"}))

    staff.ensure_commune("120101")
    staff.ensure_commune("050102")  # a province code covers all its communes
    with pytest.raises(Forbidden):
        staff.ensure_commune("120102")
    Principal("admin", frozenset({"registry_admin"})).ensure_commune("250101")


def test_read_scope() -> None:
    staff = Principal("u1", frozenset({"commune_staff"}), frozenset({"120101", "05"}))

    assert staff.read_scope == {"120101", "05"}
    staff.ensure_reads("12", "1201", "120101", "12010103", "050102", "05", None)  # overlap the claim
    for area in ("01", "1202", "120102", "12010203"):
        with pytest.raises(Forbidden):
            staff.ensure_reads(area)
    for roles in ({"viewer"}, {"commune_staff", "registry_admin"}, {"payment_operator"}):
        reader = Principal("u2", frozenset(roles), frozenset({"120101"}))
        assert reader.read_scope is None
        reader.ensure_reads("250101")
