"""Instructions the gateway executes per request, beside the floor's: a CPU figure that the machine's load
does not move.

    .venv/bin/python bench/bench_instructions.py [--requests 400] [--concurrency 4] [--warmup 100] [--json FILE]

CPU time on a shared VM moves by a quarter from one run to the next, so two versions of the code whose CPU
per request differs by less than that cannot be told apart by timing them. Valgrind's callgrind counts the
instructions a process executes instead, the same for the same code and inputs whatever else the cores do
(within a few per cent here: batches and timers fall differently). This starts the simulator as usual and
the gateway, the bare proxy over tokenmux's own client (the floor) and the trivial app (``floor_apps.py``)
each under ``valgrind --tool=callgrind`` (every thread counted together), warms each up, zeroes its counters,
sends the same requests as ``run.py`` (non-streamed, then streamed) and reads the instructions counted. The
processes run about 50 times slower under valgrind: the figures are counts, never times, and work done
once per batch or per pass of the loop (the request log's transactions, the journal's writes) is shared by
fewer requests than at full speed.

Needs valgrind (``callgrind_control`` beside it). ``run.py`` runs it only when asked
(``--extras instructions``): starting three processes under valgrind takes a minute or more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loadgen import Target, concurrent, sequential
from measure import paths
from stack import Service, running_stack

# The floor apps measured beside the gateway (floor_apps.py's kinds), and what the table calls them.
FLOOR_APPS = {"proxy": "bare proxy, own client (floor)", "server": "trivial app"}
# Counts are read from the dump files callgrind writes on request, one per dump, named <out>.<n>.
_SETTLE_S = 0.5


def dumped_instructions(dump: Path) -> int:
    """The instructions (``Ir``) a callgrind dump file counted: its ``totals:`` line, else ``summary:``."""
    summary = None
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
        if line.startswith("summary:"):
            summary = int(line.split()[1])
    if summary is None:
        raise ValueError(f"{dump} has no totals or summary line: not a callgrind dump")
    return summary


# CPython's functions that set an exception with a message or value; what a call to one costs, with what it
# calls, is what building that exception cost.
_EXCEPTION_SETTERS = frozenset(
    {
        "PyErr_Format",
        "PyErr_FormatV",
        "PyErr_SetString",
        "PyErr_SetObject",
        "PyErr_SetNone",
        "_PyErr_SetKeyError",
    }
)


def _function(name: str) -> str:
    """A dump's function name without callgrind's recursion mark (``f'2``)."""
    return name.split("'", 1)[0]


def exception_instructions(dump: Path) -> int:
    """Instructions a callgrind dump counted in setting Python exceptions: the inclusive cost of every call
    into ``_EXCEPTION_SETTERS`` from outside them (read from the ``calls=`` records of a dump written with
    ``--compress-strings=no``). A request that raises nothing should spend next to none here; one that
    does shows where CPython builds exceptions only to throw them away (a failed attribute lookup of
    sqlite3's adapters, ``b"\\r" in data`` trying its needle as an integer first)."""
    total = 0
    caller = callee = ""
    cost_follows = False
    for line in dump.read_text(errors="replace").splitlines():
        if cost_follows:
            cost_follows = False
            if callee in _EXCEPTION_SETTERS and caller not in _EXCEPTION_SETTERS:
                total += int(line.split()[1])
        elif line.startswith("fn="):
            caller = _function(line[3:])
        elif line.startswith("cfn="):
            callee = _function(line[4:])
        elif line.startswith("calls="):
            cost_follows = True  # the next line is the call's position and inclusive cost
    return total


def _control(option: str, pid: int) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True, timeout=120)


def _newest_dump(directory: Path, pid: int, before: set[Path]) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = set(directory.glob(f"{pid}.cg.*")) - before
        if new:
            time.sleep(_SETTLE_S)  # callgrind writes the file after creating it
            return max(new, key=lambda p: int(p.suffix[1:]))
        time.sleep(0.2)
    raise RuntimeError(f"callgrind wrote no dump for process {pid}")


def instructions_per_request(
    service: Service, target: Target, directory: Path, *, requests: int, concurrency: int, streamed: bool
) -> tuple[float, float]:
    """Instructions ``service`` executed per request over ``requests`` requests at ``concurrency``, and how
    many of them set exceptions (``exception_instructions``)."""
    _control("--zero", service.pid)
    asyncio.run(concurrent(target, requests, concurrency, streamed=streamed))
    time.sleep(_SETTLE_S)  # what a request leaves behind (the record's write) is counted with it
    before = set(directory.glob(f"{service.pid}.cg.*"))
    _control("--dump", service.pid)
    dump = _newest_dump(directory, service.pid, before)
    return dumped_instructions(dump) / requests, exception_instructions(dump) / requests


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400, help="per app and kind (default 400)")
    parser.add_argument("--concurrency", type=int, default=4, help="connections per app (default 4)")
    parser.add_argument("--warmup", type=int, default=100, help="requests per app before counting")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the counts as JSON")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind (with callgrind_control) is needed: apt-get install valgrind", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="tokenmux-callgrind-") as out:
        directory = Path(out)
        launcher = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={directory}/%p.cg",
            "--dump-instr=no",
            "--compress-strings=no",
        ]
        print("starting the simulator, and the gateway and the floor apps under callgrind", file=sys.stderr)
        with running_stack(
            floor=True, floor_kinds=tuple(FLOOR_APPS), launcher=launcher, ready_timeout_s=600
        ) as stack:
            p = paths(stack)
            apps = [("tokenmux", stack.gateway, p.gateway)]
            apps += [(FLOOR_APPS[kind], stack.floors[kind], p.floors[kind]) for kind in FLOOR_APPS]
            for _, _, target in apps:
                asyncio.run(sequential([target], args.warmup, streamed=False))
                asyncio.run(sequential([target], args.warmup, streamed=True))
            counts: dict[tuple[str, bool], float] = {}
            thrown: dict[tuple[str, bool], float] = {}  # of them, setting exceptions
            for streamed in (False, True):
                for name, service, target in apps:
                    counts[name, streamed], thrown[name, streamed] = instructions_per_request(
                        service,
                        target,
                        directory,
                        requests=args.requests,
                        concurrency=args.concurrency,
                        streamed=streamed,
                    )

    print(
        f"instructions per request, {args.requests} requests at concurrency {args.concurrency} after "
        f"{args.warmup} to warm up; CPython {platform.python_version()}, {platform.machine()}"
    )
    floor = FLOOR_APPS["proxy"]
    if args.json:
        kinds = {"non-streamed": False, "streamed": True}
        result = {
            "requests": args.requests,
            "concurrency": args.concurrency,
            "warmup": args.warmup,
            "floor": floor,
            "counts": {k: {name: counts[name, s] for name, _, _ in apps} for k, s in kinds.items()},
            "exceptions": {k: {name: thrown[name, s] for name, _, _ in apps} for k, s in kinds.items()},
        }
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    for streamed in (False, True):
        kind = "streamed" if streamed else "non-streamed"
        for name, _, _ in apps:
            value = counts[name, streamed]
            ratio = "" if name == floor else f"  ({value / counts[floor, streamed]:.2f}x the floor)"
            print(f"  {kind:13s} {name:32s} {value:12,.0f}{ratio}")
    print("  of which setting Python exceptions (PyErr_Format and its kin, with what they call):")
    for streamed in (False, True):
        kind = "streamed" if streamed else "non-streamed"
        for name, _, _ in apps:
            print(f"  {kind:13s} {name:32s} {thrown[name, streamed]:12,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
