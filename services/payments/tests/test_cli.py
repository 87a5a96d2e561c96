"""The operator CLI against a stand-in of the payments API: what it asks and what it shows."""

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from payments import cli
from typer.testing import CliRunner

RUN_ID = "5d0c6f0e-0000-4000-8000-000000000001"
ENV = {"KROUSAR_PAYMENTS_URL": "http://payments.test", "KROUSAR_TOKEN": "token", "COLUMNS": "200"}


def run_body(state: str, **over: Any) -> dict[str, Any]:
    return {
        "run_id": RUN_ID,
        "programme_code": "COVID19_CT",
        "period": "2024-03",
        "state": state,
        "households": 5000,
        "lines": 5000,
        "amount_riel": 1_500_000_000,
        "available_from": "2024-03-25",
        "claim_until": "2024-04-23",
        "over_budget": False,
        "budget_ceiling_riel": None,
        "totals": {"by_province": [], "by_location_category": [], "by_poverty_level": []},
        "households_left_out": 0,
        "left_out_reasons": {},
        "statuses": {},
        "progress": None,
        "cancel_reason": None,
        **over,
    }


class Api:
    """Answers each request with the next of its answers, and keeps what was asked."""

    def __init__(self, answers: list[tuple[int, dict[str, Any]]]) -> None:
        self.answers = iter(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, body = next(self.answers)
        return httpx.Response(status, json=body)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[list[tuple[int, dict[str, Any]]]], Api]]:
    def install(answers: list[tuple[int, dict[str, Any]]]) -> Api:
        stand_in = Api(answers)

        def client(url: str, token: str) -> httpx.Client:
            headers = {"Authorization": f"Bearer {token}"}
            return httpx.Client(base_url=url, headers=headers, transport=httpx.MockTransport(stand_in))

        monkeypatch.setattr(cli, "_client", client)
        monkeypatch.setattr(cli.time, "sleep", lambda _seconds: None)
        return stand_in

    yield install


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli.app, list(args), env=ENV)


def test_watch_shows_the_progress_bar_until_the_run_rests(api: Callable[..., Api]) -> None:
    calculating = {"phase": "CALCULATING", "done": 2500, "total": 5000}
    stand_in = api(
        [
            (200, run_body("DRAFT", progress=calculating)),
            (200, run_body("DRAFT", progress={**calculating, "done": 5000})),
            (
                200,
                run_body(
                    "CALCULATED",
                    statuses={
                        "CALCULATED": {"lines": 5000, "households": 5000, "amount_riel": 1_500_000_000}
                    },
                ),
            ),
        ]
    )

    result = invoke("runs", "watch", RUN_ID)

    assert result.exit_code == 0, result.output
    assert [r.url.path for r in stand_in.requests] == [f"/v1/runs/{RUN_ID}"] * 3
    assert stand_in.requests[0].headers["authorization"] == "Bearer token"
    bar = next(line for line in result.output.splitlines() if "calculated" in line)
    assert "5000/5000" in bar  # the bar as the run came to rest: the whole calculation done
    assert "CALCULATED — 5,000 households, 5,000 lines, 1,500,000,000 ៛" in result.output


def test_watch_follows_the_psp_statuses_of_an_instructed_run(api: Callable[..., Api]) -> None:
    paid = {"lines": 4900, "households": 4900, "amount_riel": 1_470_000_000}
    failed = {"lines": 100, "households": 100, "amount_riel": 30_000_000}
    api(
        [
            (200, run_body("INSTRUCTED", statuses={"PAID": {**paid, "lines": 10}})),
            (200, run_body("RECONCILED", statuses={"PAID": paid, "FAILED": failed})),
        ]
    )

    result = invoke("runs", "watch", RUN_ID)

    assert result.exit_code == 0, result.output
    assert "RECONCILED" in result.output
    assert "4,900" in result.output and "FAILED" in result.output


def test_cancel_sends_the_reason_and_shows_the_cancelled_run(api: Callable[..., Api]) -> None:
    stand_in = api([(200, run_body("CANCELLED", cancel_reason="wrong period"))])

    result = invoke("runs", "cancel", RUN_ID, "--reason", "wrong period")

    assert result.exit_code == 0, result.output
    (request,) = stand_in.requests
    assert (request.method, request.url.path) == ("POST", f"/v1/runs/{RUN_ID}/cancellation")
    assert json.loads(request.content) == {"reason": "wrong period"}
    assert f"run {RUN_ID} CANCELLED: wrong period" in result.output


def test_cancel_refused_says_why_and_exits_1(api: Callable[..., Api]) -> None:
    api([(409, {"detail": f"run {RUN_ID} is APPROVED: only a run not yet approved can be cancelled"})])

    result = invoke("runs", "cancel", RUN_ID, "--reason", "too late")

    assert result.exit_code == 1
    assert "409" in result.output and "only a run not yet approved can be cancelled" in result.output
