"""Staggered provider outages: the gateway must never be the reason a request fails.

Traffic at a steady 8 requests/s (an open loop: each request is sent at its time, whatever the others do)
asks for ``provider: {"order": ["openai", "azure"]}``. After a calm start OpenAI answers 503 for 8 s, then
Azure answers 500 for 4 s, then both are well again (the simulator's control route sets this). At every
moment one of them answers, so every failed request is the gateway's own doing.

    .venv/bin/python bench/bench_outage.py                # both scenarios, about 50 s
    .venv/bin/python bench/bench_outage.py --scenarios staggered --rate 16 --json outage.json

It prints, and writes as JSON with ``--json``:

- the longest run of failed requests, in seconds from the first failure of the run to the next success
  (target 0 s), and how many answers were 502 or 503 (target 0);
- how long after OpenAI recovered the first request it served was sent (OpenAI is first in the order, so
  this is how long a recovered provider stays out of rotation: "a few seconds" at most);
- per phase, how many requests each provider served.

A second scenario, ``openai-alone``, fails OpenAI for 8 s while Azure serves: there nothing forces an
attempt at OpenAI, so the time until it is served again shows how its circuit's probes bring it back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))

from stack import HOST, running_stack

MODEL = "openai/gpt-4.1-nano"
Phases = list[tuple[str, float, dict[str, int]]]  # (name, seconds, {prefix: error status}) in order
SCENARIOS: dict[str, Phases] = {
    # Both circuits open in turn; one provider answers at every moment.
    "staggered": [
        ("calm", 3.0, {}),
        ("openai 503", 8.0, {"openai": 503}),
        ("azure 500", 4.0, {"azure": 500}),
        ("recovered", 10.0, {}),
    ],
    # OpenAI alone fails while Azure serves: how soon is OpenAI, first in the order, back once it answers?
    "openai-alone": [
        ("calm", 3.0, {}),
        ("openai 503", 8.0, {"openai": 503}),
        ("recovered", 12.0, {}),
    ],
}
RECOVERY_BUDGET_S = 5.0  # "back in rotation within a few seconds"


@dataclass(slots=True)
class Answer:
    sent_s: float  # from the start of the load
    took_s: float
    status: int
    provider: str | None  # who served it (a 200's "provider")
    phase: str


@dataclass(slots=True)
class Result:
    scenario: str
    rate: float
    requests: int
    longest_failure_run_s: float
    failures: int
    status_502_503: int
    statuses: dict[str, int]
    openai_back_after_s: float | None  # from OpenAI's recovery to the first request it served
    served_by_phase: dict[str, dict[str, int]]


def phase_at(phases: Phases, t: float) -> str:
    start = 0.0
    for name, seconds, _ in phases:
        if t < start + seconds:
            return name
        start += seconds
    return phases[-1][0]


def longest_failure_run(answers: list[Answer]) -> float:
    """Seconds from the first failure of a run of failures to the next success (sent times)."""
    longest = 0.0
    run_start: float | None = None
    for answer in sorted(answers, key=lambda a: a.sent_s):
        if answer.status != 200:
            if run_start is None:
                run_start = answer.sent_s
        elif run_start is not None:
            longest = max(longest, answer.sent_s - run_start)
            run_start = None
    if run_start is not None:  # failing to the end
        longest = max(longest, answers[-1].sent_s - run_start)
    return longest


async def drive(url: str, api_key: str, control: object, rate: float, phases: Phases) -> list[Answer]:
    from tokenmux.simulator.control_client import SimulatorControl

    assert isinstance(control, SimulatorControl)
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hello there"}],
        "max_tokens": 8,
        "provider": {"order": ["openai", "azure"]},
    }
    headers = {"Authorization": f"Bearer {api_key}"}
    answers: list[Answer] = []
    total_s = sum(seconds for _, seconds, _ in phases)
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def one(session: aiohttp.ClientSession, sent_s: float) -> None:
        begin = loop.time()
        provider = None
        try:
            async with session.post(f"{url}/api/v1/chat/completions", json=body, headers=headers) as r:
                status = r.status
                data = await r.json(content_type=None)
                if status == 200:
                    provider = data.get("provider")
        except (aiohttp.ClientError, TimeoutError, ValueError):
            status = 0
        answers.append(Answer(sent_s, loop.time() - begin, status, provider, phase_at(phases, sent_s)))

    async def faults() -> None:
        # Profiles change from the control client's blocking calls, off the load's loop.
        offset = 0.0
        for _, seconds, errors in phases:
            await asyncio.sleep(max(0.0, started + offset - loop.time()))
            for prefix in ("openai", "azure"):
                fields = {"error_rate": 1.0, "error_status": errors[prefix]} if prefix in errors else {}
                await asyncio.to_thread(control.profile, prefix, **fields)
            offset += seconds

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        fault_task = asyncio.create_task(faults())
        tasks = []
        count = int(total_s * rate)
        for i in range(count):
            due = started + i / rate
            await asyncio.sleep(max(0.0, due - loop.time()))
            tasks.append(asyncio.create_task(one(session, due - started)))
        await asyncio.gather(*tasks)
        await fault_task
    return answers


def summarise(scenario: str, answers: list[Answer], rate: float) -> Result:
    statuses = Counter(str(a.status) for a in answers)
    phases = SCENARIOS[scenario]
    recovered_at = phases[0][1] + phases[1][1]  # OpenAI answers again from here
    served_again = [a.sent_s for a in answers if a.provider == "openai" and a.sent_s >= recovered_at]
    by_phase: dict[str, dict[str, int]] = {}
    for answer in answers:
        who = answer.provider or f"failed {answer.status}"
        by_phase.setdefault(answer.phase, {}).setdefault(who, 0)
        by_phase[answer.phase][who] += 1
    return Result(
        scenario=scenario,
        rate=rate,
        requests=len(answers),
        longest_failure_run_s=round(longest_failure_run(answers), 3),
        failures=sum(1 for a in answers if a.status != 200),
        status_502_503=statuses["502"] + statuses["503"],
        statuses=dict(statuses),
        openai_back_after_s=round(min(served_again) - recovered_at, 3) if served_again else None,
        served_by_phase=by_phase,
    )


def report(result: Result) -> str:
    back = "never" if result.openai_back_after_s is None else f"{result.openai_back_after_s:.2f} s"
    lines = [
        f"{result.scenario}: {result.requests} requests at {result.rate:g}/s, provider order openai, azure",
        f"longest run of failed requests: {result.longest_failure_run_s:.2f} s (target 0 s)",
        f"answers 502 or 503: {result.status_502_503} (target 0); all failures: {result.failures}",
        f"OpenAI served again {back} after it recovered (target ≤ {RECOVERY_BUDGET_S:g} s)",
    ]
    for phase, served in result.served_by_phase.items():
        lines.append(f"  {phase:<12} " + ", ".join(f"{who} {n}" for who, n in sorted(served.items())))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=8.0, help="requests per second (default 8)")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"among {', '.join(SCENARIOS)} (default: all)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"error: unknown scenario {', '.join(unknown)}; choose among {', '.join(SCENARIOS)}")
    results = []
    for scenario in chosen:
        # A fresh gateway each time: no health state carried over from the scenario before.
        with running_stack() as stack:
            url = f"http://{HOST}:{stack.gateway.port}"
            phases = SCENARIOS[scenario]
            answers = asyncio.run(drive(url, stack.api_key, stack.simulator_control, args.rate, phases))
        results.append(summarise(scenario, answers, args.rate))
        print(report(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
