"""User code calling a fault with a wrong keyword or type fails ``mypy --strict`` (issue 16).

The faults resolve lazily at run time (``import pytest_resiliency`` stays light), but type
checkers see their real signatures. This runs mypy on a small user module, as a user's CI would.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

USER_CODE = textwrap.dedent(
    """
    from pytest_resiliency import faults


    def wrong(p: faults.Proxy) -> None:
        faults.kill(123, nonsense=1)  # line 6
        faults.pause(1.5)  # line 7
        faults.latency(p, "200ms", jitter_ms=5)  # line 8
        faults.cpu_stress(cores="two")  # line 9
        faults.blackhole(8080)  # line 10: a port needs netns=
        faults.latency(p, "1s", stream="sideways")  # line 11
        p.latency("1s", nonsense=1)  # line 12
        faults.disk_fill("/tmp", percent="half")  # line 13


    def right(p: faults.Proxy) -> None:
        with faults.kill(123, signal="SIGTERM"), faults.latency(p, "200ms", jitter="20ms", stream="both"):
            pass
        faults.blackhole(8080, netns="host").revert()
        faults.blackhole(p).inject()
        faults.disk_fill("/tmp", "1GB")
        faults.bandwidth(p, "64KB/s")
        p.slicer("1KB", delay="1ms")
        faults.memory_stress(percent=10, confine=123)
        faults.ec2_stop("i-0123456789abcdef0")
    """
)


def test_wrong_keywords_and_types_fail_type_checking(tmp_path: Path) -> None:
    pytest.importorskip("mypy", reason="mypy is in the 'test' extra")
    (tmp_path / "user_code.py").write_text(USER_CODE, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--cache-dir", str(ROOT / ".mypy_cache"),
         "user_code.py"],
        cwd=tmp_path,
        env={"MYPYPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    lines = sorted({int(line.split(":")[1]) for line in errors})
    assert lines == [6, 7, 8, 9, 10, 11, 12, 13], done.stdout + done.stderr
    assert 'Unexpected keyword argument "nonsense" for "Kill"' in done.stdout  # faults.kill is the class Kill
    assert 'Argument "jitter_ms" to "latency" has incompatible type "int"; expected "Never"' in done.stdout
