"""bench_instructions.py reads the instructions callgrind counted, from its real dump files."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _module() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # its siblings (loadgen, measure, stack) import as top-level modules
    try:
        spec = importlib.util.spec_from_file_location("bench_instructions", BENCH / "bench_instructions.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_a_dump_is_read_by_its_totals_else_its_summary(tmp_path: Path) -> None:
    read = _module().dumped_instructions
    dump = tmp_path / "1.cg.1"
    dump.write_text("# callgrind format\nevents: Ir\nsummary: 1200\n\nfn=main\n3 1200\ntotals: 1234\n")
    assert read(dump) == 1234
    dump.write_text("# callgrind format\nevents: Ir\nsummary: 1200\n")
    assert read(dump) == 1200
    dump.write_text("not a dump\n")
    with pytest.raises(ValueError, match="not a callgrind dump"):
        read(dump)


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_a_real_dump_counts_more_for_more_work(tmp_path: Path) -> None:
    read = _module().dumped_instructions

    def counted(loops: int) -> int:
        out = tmp_path / f"{loops}.cg"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                "/bin/sh",
                "-c",
                f"i=0; while [ $i -lt {loops} ]; do i=$((i+1)); done",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        return int(read(out))

    few, many = counted(10), counted(20_000)
    assert 0 < few < many


def test_exceptions_are_counted_once_by_the_calls_that_set_them(tmp_path: Path) -> None:
    count = _module().exception_instructions
    dump = tmp_path / "1.cg.1"
    dump.write_text(
        "# callgrind format\nevents: Ir\n\n"
        "fn=type_getattro\n12 40\n"
        "cfn=PyErr_Format\ncalls=2 0\n13 900\n"  # a failed lookup, twice: 900 with what it called
        "cfn=_PyType_Lookup\ncalls=2 0\n14 300\n"  # not an exception
        "fn=PyErr_Format\n1 200\n"
        "cfn=PyErr_SetObject\ncalls=2 0\n2 500\n"  # inside the first call: already counted
        "fn=_Py_bytes_contains\n5 10\n"
        "cfn=PyErr_Format'2\ncalls=1 0\n6 450\n"  # a recursion mark names the same function
        "totals: 2400\n"
    )
    assert count(dump) == 900 + 450
