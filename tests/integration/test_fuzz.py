"""Schemathesis against every service's OpenAPI schema, with a token that holds every role: no
answer is a 5xx, and every 4xx is ``application/problem+json``.

The services run on a stack of their own (topics, databases), so that what the fuzzer creates
(programmes, payment runs, evaluations) never reaches the other tests' services. Generation is
derandomized: a run is reproducible, and bounded per operation. Negative data sometimes leaves
the token out: those 401s are checked too. Requests are plain blocking calls: the services run in
processes of their own, the test's event loop has nothing else to do meanwhile.
"""

from collections.abc import AsyncIterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from krousar_common.auth import ROLES
from krousar_common.errors import PROBLEM_JSON
from krousar_common.testing import ServiceProcess, TestStack, bearer
from schemathesis import APIOperation, Case, CheckContext, GenerationMode, Response
from schemathesis.checks import not_a_server_error

EXAMPLES = 8  # per operation and generation mode: the file stays within ~90 s on two cores
EVERY_ROLE = bearer("fuzzer", *ROLES)
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # shrinking replays requests for long; the failure is enough
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
async def fuzz_stack() -> AsyncIterator[TestStack]:
    fuzz_stack = TestStack()
    await fuzz_stack.create_topics()
    yield fuzz_stack
    await fuzz_stack.drop()


def problem_json_errors(ctx: CheckContext, response: Response, case: Case) -> None:
    if 400 <= response.status_code < 500:
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type == PROBLEM_JSON, f"{response.status_code} answered as {content_type!r}"


def fuzz(operation: APIOperation, mode: GenerationMode, base_url: str) -> str | None:
    """The failure ``operation`` shows with data of ``mode``, if any."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @FUZZ
    def run(case: Case) -> None:
        response = case.call(base_url=base_url, headers=EVERY_ROLE, timeout=30)
        case.validate_response(response, checks=[not_a_server_error, problem_json_errors])

    try:
        run()
    except Unsatisfiable:  # nothing in the request to make invalid (no parameter, no body)
        assert mode is GenerationMode.NEGATIVE
    except Exception as exc:  # a check's failure, with the request that reproduces it
        return f"{operation.label} ({mode.value}): {exc}"
    return None


@pytest.mark.parametrize("name", ["registration", "eligibility", "topups", "payments", "psp_simulator"])
async def test_no_server_error_and_every_client_error_is_problem_json(
    fuzz_stack: TestStack, name: str
) -> None:
    env = {"PSP_DATABASE": fuzz_stack.database(name)} if name == "psp_simulator" else {}
    service = await ServiceProcess(name, fuzz_stack, **env).start()
    try:
        schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        failures = [
            failure
            for operation in operations
            for mode in GenerationMode
            if (failure := fuzz(operation, mode, service.url)) is not None
        ]
    finally:
        service.stop()
    assert operations
    assert not failures, "\n\n".join(failures)
