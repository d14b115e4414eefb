"""The attempt loop through the gateway, against the simulator: health never refuses while a provider can
answer, and every answer that carries a generation id is in the request log with its reason."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from gateway_support import HELLO, NANO, generation

ORDER = {"provider": {"order": ["openai", "azure"]}}


def post(gateway: Any, body: dict[str, Any]) -> httpx.Response:
    """One chat request, streamed or not, read whole: the status the client saw and the body it got."""
    return httpx.post(
        f"{gateway.url}/api/v1/chat/completions",
        headers={"Authorization": f"Bearer {gateway.key}"},
        json={"model": NANO, "messages": HELLO, **body},
        timeout=20,
    )


def served_by(response: httpx.Response) -> str | None:
    """The provider that answered, or None when the answer was an error (an error status, or a stream that
    ended with an error chunk)."""
    if response.status_code != 200:
        return None
    if response.headers["content-type"].startswith("text/event-stream"):
        frames = [line[6:] for line in response.text.splitlines() if line.startswith("data: {")]
        if any('"error"' in f for f in frames):
            return None
        return httpx.Response(200, content=frames[0]).json()["provider"]  # type: ignore[no-any-return]
    return response.json()["provider"]  # type: ignore[no-any-return]


def test_a_staggered_outage_of_both_providers_never_reaches_the_client(gateway: Any, sim: Any) -> None:
    # The gateway's default health settings; openai 503s for a while, then azure 500s for a while, never
    # both at once. Each one's circuit opens in turn; the other always answers, so no client sees an error.
    phases = [
        (1.5, {"openai": {"error_rate": 1.0, "error_status": 503}, "azure": {}}),
        (1.0, {"openai": {}, "azure": {"error_rate": 1.0, "error_status": 500}}),
        (1.0, {"openai": {}, "azure": {}}),
    ]
    outcomes: list[tuple[int, int, str | None]] = []
    n = 0
    for phase, (length, profiles) in enumerate(phases):
        for prefix, profile in profiles.items():
            sim.profile(prefix, **profile)
        ends = time.monotonic() + length
        while time.monotonic() < ends:
            started = time.monotonic()
            r = post(gateway, {"stream": n % 2 == 1, **ORDER})
            outcomes.append((phase, r.status_code, served_by(r)))
            n += 1
            time.sleep(max(0.0, 0.125 - (time.monotonic() - started)))  # 8 requests a second
    assert [o for o in outcomes if o[2] is None] == []
    assert {p for phase, _, p in outcomes if phase == 0} == {"azure"}
    assert {p for phase, _, p in outcomes if phase == 1} == {"openai"}
    # openai's circuit opened in phase 0; the first answer it gave as a last resort in phase 1 closed it,
    # so it leads again, as the order says, with no wait for its circuit to lapse.
    assert {p for phase, _, p in outcomes if phase == 2} == {"openai"}


def test_a_recovered_provider_is_back_within_seconds_after_its_circuit_opened(gateway: Any, sim: Any) -> None:
    sim.profile("openai", error_rate=1.0, error_status=500)
    for _ in range(6):  # five consecutive failures open its circuit
        assert served_by(post(gateway, ORDER)) == "azure"
    sim.profile("openai")
    recovered = time.monotonic()
    while served_by(post(gateway, ORDER)) != "openai":
        assert time.monotonic() - recovered < 8.0, "openai was not tried again within 8 s of recovering"
        time.sleep(0.1)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("profiles", "settings", "status"),
    [
        # Every attempt failed: 502.
        ({"openai": {"error_rate": 1.0, "error_status": 500}, "azure": {"error_rate": 1.0}}, {}, 502),
        # The deadline passed: 504.
        ({"openai": {"hang": True}, "azure": {"hang": True}}, {"request_timeout_s": 0.5}, 504),
        # The provider refused the request itself: its status goes back.
        ({"openai": {"error_rate": 1.0, "error_status": 400}}, {}, 400),
        # Both cooling down after 429s with Retry-After, and tried anyway: 429, the client may retry.
        ({"openai": {"rate_limit_rate": 1.0}, "azure": {"rate_limit_rate": 1.0}}, {}, 429),
    ],
)
def test_every_failed_answer_is_in_the_log_with_its_reason(
    gateway_factory: Any,
    sim: Any,
    profiles: dict[str, dict[str, Any]],
    settings: dict[str, Any],
    status: int,
    stream: bool,
) -> None:
    gw = gateway_factory(**settings)
    for prefix, profile in profiles.items():
        sim.profile(prefix, **profile)
    for _ in range(2):  # the second finds every endpoint blocked when the first put them in cooldown
        r = post(gw, {"stream": stream, **ORDER})
        if r.status_code == 200:
            # Keep-alive comments went out first, with a 200: the failure is told in the stream.
            assert stream and r.text.startswith(": tokenmux processing")
            told = httpx.Response(200, content=r.text.split("data: ")[-2]).json()["error"]["message"]
        else:
            assert r.status_code == status
            told = r.json()["error"]["message"]
        record = generation(gw, r.headers["x-generation-id"])
        assert record["status"] == "error" and record["http_status"] == status
        assert record["error"] and record["error"] in told
        assert record["attempts"] and all(a["outcome"] == "error" for a in record["attempts"])
