"""Fuzz the API with schemathesis against the server's own OpenAPI schema for /v1 (loopback only, bounded in
count): no request it makes, valid or not, gets a 5xx, and every error is in OpenAI's shape."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tools.live_app import start_app

# hundreds of requests, some of them answered by the model: about 40 s
pytestmark = pytest.mark.slow

MAX_ANSWER = 8  # fuzzed requests may ask for a million tokens, or none (the window): capped so the run stays short


@pytest.fixture(scope="module")
def live(embedded_gguf, app_home):
    app = start_app("--offline", home=app_home)
    yield app
    app.stop()


def test_no_request_gets_a_5xx_and_errors_are_in_openais_shape(live):
    schema = schemathesis.openapi.from_url(f"{live.url}/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/responses"}
    seen: list[int] = []

    for operation, mode in [(op, mode) for op in operations
                            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
                            if op.method.upper() == "POST" or mode is schemathesis.GenerationMode.POSITIVE]:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def check(case):
            if isinstance(case.body, dict):
                limits = ("max_tokens", "max_completion_tokens", "max_output_tokens")
                for key in limits:
                    if isinstance(case.body.get(key), int) and case.body[key] > MAX_ANSWER:
                        case.body[key] = MAX_ANSWER
                if not any(isinstance(case.body.get(key), int) for key in limits):  # else it may run to the window
                    case.body["max_output_tokens" if operation.path == "/v1/responses" else "max_tokens"] = MAX_ANSWER  # noqa: B023
            response = case.call(base_url=live.url, timeout=60)
            seen.append(response.status_code)
            assert response.status_code < 500, (case.body, response.text[:500])
            if response.status_code >= 400:
                error = response.json()["error"]
                assert set(error) == {"message", "type", "param", "code"} and error["message"]

        check()
    assert any(code == 200 for code in seen) and any(400 <= code < 500 for code in seen), sorted(set(seen))
