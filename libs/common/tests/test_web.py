import asyncpg
import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from krousar_common.errors import Conflict
from krousar_common.settings import ServiceSettings
from krousar_common.web import ServiceDefinition, create_service_app
from pydantic import BaseModel

router = APIRouter()


class Body(BaseModel):
    village_code: str
    members: int


@router.post("/things")
async def create_thing(body: Body) -> dict:
    return {"ok": True}


@router.get("/conflict")
async def conflict() -> dict:
    raise Conflict("already there", field="national_id", other_household_id="abc")


@router.get("/boom")
async def boom() -> dict:
    raise RuntimeError("a bug")


@router.get("/nul/{error}")
async def nul(error: str) -> dict:
    errors = {"text": asyncpg.CharacterNotInRepertoireError, "jsonb": asyncpg.UntranslatableCharacterError}
    raise errors[error]("PostgreSQL refused a NUL character")


def client() -> TestClient:
    definition = ServiceDefinition(name="test", title="t", description="t", routers=[router])
    app = create_service_app(definition, ServiceSettings(service_name="test", port=0))
    return TestClient(app, raise_server_exceptions=False)  # no lifespan: no stack needed


def test_validation_errors_are_422_problem_json_naming_the_field() -> None:
    response = client().post("/things", json={"village_code": "1", "members": "many"})

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {"field": "members", "message": response.json()["errors"][0]["message"]}
    ]


def test_service_errors_carry_their_status_field_and_extras() -> None:
    response = client().get("/conflict")

    assert response.status_code == 409
    assert response.json()["errors"] == [{"field": "national_id", "message": "already there"}]
    assert response.json()["other_household_id"] == "abc"


def test_a_bug_is_a_500_problem_json_with_a_correlation_id() -> None:
    response = client().get("/boom", headers={"x-correlation-id": "req-42"})

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "a bug" not in response.text  # internals stay in the logs


@pytest.mark.parametrize("column", ["text", "jsonb"])
def test_a_nul_character_postgresql_cannot_store_is_422_problem_json(column: str) -> None:
    response = client().get(f"/nul/{column}")

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "NUL character" in response.json()["detail"]


def test_every_response_names_its_correlation_id() -> None:
    assert (
        client().get("/conflict", headers={"x-correlation-id": "req-7"}).headers["x-correlation-id"]
        == "req-7"
    )
