"""The system under test: the provider simulator and the gateway, each in a process of its own.

Separate processes so that the gateway's CPU can be read on its own from ``/proc/<pid>/stat`` and so that
neither shares an event loop with the load generator, as in production. Everything they write (config,
SQLite database, logs) goes to a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import compileall
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import tokenmux
from tokenmux.simulator.control_client import SimulatorControl

HOST = "127.0.0.1"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The floor apps (floor_apps.py), each served in a process of its own beside the gateway.
FLOOR_APPS = Path(__file__).resolve().with_name("floor_apps.py")
FLOOR_KINDS = ("server", "proxy", "proxy-aiohttp")


def _free_port(taken: Iterable[int] = ()) -> int:
    """A port free now and not among ``taken`` (ports chosen for processes that may not have bound yet)."""
    ports = set(taken)
    while True:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port: int = s.getsockname()[1]
        if port not in ports:
            return port


def _clean_env() -> dict[str, str]:
    # A provider key in the environment would configure that provider at its public URL: the benchmark
    # must never reach the internet, so the gateway sees no key but those in its config file.
    env = {
        k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("TOKENMUX_")
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _tokenmux(*args: str) -> list[str]:
    return [sys.executable, "-m", "tokenmux.cli", *args]


def _process_clock(pid: int) -> int:
    """The clock id of another process's CPU time, all its threads together, in nanoseconds (Linux
    encodes it as ``~pid << 3 | CPUCLOCK_SCHED``; what ``clock_getcpuclockid(3)`` returns)."""
    return ((~pid) << 3) | 2


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """A process's CPU time so far: user and system time in clock ticks (10 ms) from ``/proc``, and, where
    the kernel gives it, the total to the nanosecond from the process's CPU clock (threads that have ended
    included). The total is what figures use; the ticks only split it into user and system time."""

    user_s: float
    system_s: float
    exact_s: float | None = None

    @property
    def total_s(self) -> float:
        return self.user_s + self.system_s if self.exact_s is None else self.exact_s

    def split(self) -> tuple[float, float]:
        """(user, system) seconds adding up to ``total_s``: the ticks' shares of the exact total."""
        ticks = self.user_s + self.system_s
        if self.exact_s is None or ticks <= 0:
            return self.user_s, self.system_s
        return self.exact_s * self.user_s / ticks, self.exact_s * self.system_s / ticks

    def __sub__(self, other: CpuTimes) -> CpuTimes:
        exact = None
        if self.exact_s is not None and other.exact_s is not None:
            exact = self.exact_s - other.exact_s
        return CpuTimes(self.user_s - other.user_s, self.system_s - other.system_s, exact)

    def __add__(self, other: CpuTimes) -> CpuTimes:
        exact = None
        if self.exact_s is not None and other.exact_s is not None:
            exact = self.exact_s + other.exact_s
        return CpuTimes(self.user_s + other.user_s, self.system_s + other.system_s, exact)


@dataclass(slots=True)
class Service:
    """A running ``tokenmux`` process on a loopback port."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_times(self) -> CpuTimes:
        """User and system CPU of every thread of the process so far (clock-tick resolution, 10 ms), and
        their total to the nanosecond."""
        try:
            exact: float | None = time.clock_gettime(_process_clock(self.pid))
        except OSError:  # not Linux, or not allowed to read it
            exact = None
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        # The command name in field 2 may hold spaces; the fields after its closing parenthesis do not.
        fields = stat[stat.rindex(")") + 2 :].split()
        return CpuTimes(int(fields[11]) / _CLOCK_TICKS, int(fields[12]) / _CLOCK_TICKS, exact)

    def io_calls(self) -> tuple[int, int]:
        """Read and write system calls of every thread so far (``syscr``, ``syscw`` of ``/proc/<pid>/io``:
        the read/write family, sockets and files alike; ``recvfrom``/``sendto`` are not counted)."""
        fields = dict(line.split(": ") for line in Path(f"/proc/{self.pid}/io").read_text().splitlines())
        return int(fields["syscr"]), int(fields["syscw"])

    def memory_kib(self, field: str = "VmRSS") -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"/proc/{self.pid}/status has no {field}")

    def pin(self, cpus: set[int]) -> None:
        os.sched_setaffinity(self.pid, cpus)

    def wait_ready(self, is_ready: Callable[[], bool], timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the {self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if is_ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"the {self.name} was not ready within {timeout_s} s:\n{self.log_tail()}")

    def answers(self, path: str) -> bool:
        """Whether ``GET path`` answers 200 now."""
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(f"http://{HOST}:{self.port}{path}", timeout=1) as r,
        ):
            return bool(r.status == 200)
        return False

    def accepts_connections(self) -> bool:
        """Whether the port takes a connection now (uvicorn listens once the app's startup is done)."""
        try:
            socket.create_connection((HOST, self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass(slots=True)
class Stack:
    simulator: Service
    gateway: Service
    api_key: str
    database: str  # the gateway's database URL, for more keys (``tokenmux keys create --database``)
    # The simulator's control route (the tests' client): profiles per prefix, what each prefix received.
    simulator_control: SimulatorControl
    # The floor apps by kind (FLOOR_KINDS), when started: the proxies forward to the simulator's openai prefix.
    floors: dict[str, Service] = field(default_factory=dict)


def _compile_sources() -> None:
    """Write the gateway's bytecode caches, as installing its wheel does. A checkout installed in editable
    mode under ``PYTHONDONTWRITEBYTECODE`` has none, so each process would compile every module from source
    at start, which takes longer and leaves the compiler's freed memory behind (about 0.8 MB resident)."""
    compileall.compile_dir(Path(tokenmux.__file__).parent, quiet=1)


def _spawn(name: str, args: list[str], port: int, workdir: Path, env: dict[str, str]) -> Service:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    return Service(name, process, port, log)


def _config_yaml(simulator_port: int) -> str:
    base = f"http://{HOST}:{simulator_port}"
    return (
        "providers:\n"
        f'  openai: {{base_url: "{base}/openai/v1", api_key: "sk-bench"}}\n'
        f'  azure: {{base_url: "{base}/azure", api_key: "bench", api_version: "2024-10-21"}}\n'
        f'  anthropic: {{base_url: "{base}/anthropic", api_key: "bench"}}\n'
        f'  google: {{base_url: "{base}/google", api_key: "bench"}}\n'
    )


@contextlib.contextmanager
def running_stack(
    *,
    gateway_cpus: set[int] | None = None,
    simulator_cpus: set[int] | None = None,
    key_limits: tuple[str, ...] = (),
    redis_url: str | None = None,
    floor: bool = False,
    floor_kinds: Sequence[str] = FLOOR_KINDS,
    launcher: Sequence[str] = (),
    ready_timeout_s: float = 30.0,
) -> Iterator[Stack]:
    """Start the simulator and the gateway (ready to serve, with one API key), stop them on exit.
    ``key_limits`` are ``tokenmux keys create`` options for the key (``--concurrency 10``); with
    ``redis_url`` the gateway keeps its limits in that Redis; with ``floor`` the floor apps
    (``floor_apps.py``; ``floor_kinds`` of them) run too, each in its own process, on the gateway's CPUs
    when pinned. ``launcher`` is a command the gateway and the floor apps run under (a profiler), which
    may need a longer ``ready_timeout_s``."""
    workdir = Path(tempfile.mkdtemp(prefix="tokenmux-bench-"))
    env = _clean_env()
    _compile_sources()
    services: list[Service] = []
    try:
        sim_port = _free_port()
        # The floor apps start first, while the key is made: they need only the simulator's address (the
        # proxies connect on their first request).
        floors: dict[str, Service] = {}
        for kind in floor_kinds if floor else ():
            port = _free_port([sim_port, *(service.port for service in services)])
            upstream = f"http://{HOST}:{sim_port}/openai/v1/chat/completions"
            args = [sys.executable, str(FLOOR_APPS), kind, "--host", HOST, "--port", str(port)]
            floors[kind] = _spawn(
                f"floor-{kind}", [*launcher, *args, "--upstream", upstream], port, workdir, env
            )
            services.append(floors[kind])
            if gateway_cpus:
                floors[kind].pin(gateway_cpus)

        database = f"sqlite:///{workdir / 'bench.db'}"
        created = subprocess.run(
            _tokenmux("keys", "create", "--name", "bench", "--database", database, *key_limits),
            capture_output=True,
            text=True,
            env=env,
            cwd=workdir,
            timeout=60,
            check=False,
        )
        if created.returncode != 0:
            raise RuntimeError(f"tokenmux keys create failed:\n{created.stderr}")
        api_key = created.stdout.strip().splitlines()[-1]

        simulator = _spawn(
            "simulator",
            _tokenmux("simulate", "--host", HOST, "--port", str(sim_port)),
            sim_port,
            workdir,
            env,
        )
        services.append(simulator)
        if simulator_cpus:
            simulator.pin(simulator_cpus)

        config = workdir / "config.yaml"
        config.write_text(_config_yaml(sim_port))
        gw_port = _free_port([sim_port, *(service.port for service in services)])
        gateway = _spawn(
            "gateway",
            [
                *launcher,
                *_tokenmux(
                    "serve",
                    "--host",
                    HOST,
                    "--port",
                    str(gw_port),
                    "--config",
                    str(config),
                    "--database",
                    database,
                    "--log-level",
                    "warning",
                    *(("--redis", redis_url) if redis_url else ()),
                ),
            ],
            gw_port,
            workdir,
            env,
        )
        services.append(gateway)
        if gateway_cpus:
            gateway.pin(gateway_cpus)

        with SimulatorControl(f"http://{HOST}:{sim_port}") as control:
            simulator.wait_ready(control.is_up)
            gateway.wait_ready(lambda: gateway.answers("/ready"), ready_timeout_s)
            for service in floors.values():
                service.wait_ready(service.accepts_connections, ready_timeout_s)
            yield Stack(simulator, gateway, api_key, database, control, floors)
    finally:
        for service in reversed(services):
            service.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def create_key(stack: Stack, name: str, *limits: str) -> str:
    """Another key in the running gateway's database; ``limits`` as ``tokenmux keys create`` takes them
    (``"--concurrency", "1"``)."""
    created = subprocess.run(
        _tokenmux("keys", "create", "--name", name, "--database", stack.database, *limits),
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=60,
        check=False,
    )
    if created.returncode != 0:
        raise RuntimeError(f"tokenmux keys create failed:\n{created.stderr}")
    return created.stdout.strip().splitlines()[-1]
