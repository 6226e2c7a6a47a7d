"""Fault x interruption matrix: whatever ends the test, nothing is left behind.

Each case runs a real pytest in a subprocess (pytester) that injects one fault kind and is
then interrupted: an exception in the body, a breached budget, KeyboardInterrupt, SIGTERM
to pytest, or SIGKILL to pytest followed by ``pytest --resiliency-recover``. Afterwards the
outer test checks from outside, with psutil, /proc, the filesystem and nft, that no stress
process is alive, no process is stopped, no fill file or io directory exists, no nftables
table remains and the proxy holds no toxic.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from pytest_resiliency.faults.netns import NetNamespace
from pytest_resiliency.procfs import state as status

KINDS = ["pause", "cpu_stress", "memory_stress", "io_stress", "disk_fill", "port_blackhole", "latency"]
INTERRUPTIONS = ["exception", "breach", "keyboard", "sigterm", "sigkill"]

INNER_CONFTEST = """
import json, os
import pytest
from pytest_resiliency.faults.toxics import Proxy

PROXIES = []

@pytest.fixture(scope="session")
def shared_proxy():
    p = Proxy(int(os.environ["MATRIX_UPSTREAM_PORT"]))
    PROXIES.append(p)
    yield p
    p.close()

def dump_toxics():
    # Ask the proxy process itself what toxics it still holds, before fixtures are torn down.
    for p in PROXIES:
        if p.running:
            with open(os.environ["MATRIX_STATE"] + ".toxics", "w") as f:
                json.dump(p.toxics(), f)

@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item):
    dump_toxics()  # the test ended normally (exception, breach)
    return (yield)

@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    dump_toxics()  # interrupted (Ctrl-C): teardown happens after this hook
"""

INNER_TEST = """
import json, os, signal, time
import pytest
from pytest_resiliency import faults

KIND = os.environ["MATRIX_KIND"]
HOW = os.environ["MATRIX_HOW"]
MAXD = os.environ["MATRIX_MAX_DURATION"]
ARGS = os.environ["MATRIX_ARGS"]


def make(request):
    if KIND == "pause":
        return faults.pause(int(ARGS), max_duration=MAXD)
    if KIND == "cpu_stress":
        return faults.cpu_stress(1, 10, max_duration=MAXD)
    if KIND == "memory_stress":
        return faults.memory_stress(8 << 20, max_duration=MAXD)
    if KIND == "io_stress":
        return faults.io_stress(1, bytes=1 << 20, path=ARGS, max_duration=MAXD)
    if KIND == "disk_fill":
        return faults.disk_fill(ARGS, 1 << 20, max_duration=MAXD)
    if KIND == "port_blackhole":
        return faults.blackhole(8080, netns=ARGS, max_duration=MAXD)
    return faults.latency(request.getfixturevalue("shared_proxy"), "50ms", max_duration=MAXD)


def state(fault):
    info = {"kind": KIND}
    for attr in ("pid", "file", "workdir", "table"):
        value = getattr(fault, attr, None)
        if value is not None:
            info[attr] = str(value)
    with open(os.environ["MATRIX_STATE"], "w") as f:
        json.dump(info, f)


@pytest.mark.resiliency(rto="1ms")
def test_interrupted(request, experiment):
    fault = make(request)
    if HOW in ("breach", "keyboard"):
        experiment.inject(fault)  # left active: the plugin must revert it
        state(fault)
        experiment.record_operation(time.time(), 0.001, False, "op", "matrix", "refused")
        if HOW == "keyboard":
            raise KeyboardInterrupt
        return
    with fault:
        state(fault)
        if HOW == "exception":
            raise RuntimeError("boom in the body")
        if HOW == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
        if HOW == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
"""

# The inner runs need only this plugin: skipping the heavy ones (locust imports gevent) saves ~1 s each.
LEAN = ["-p", "no:cacheprovider", "-p", "no:locust", "-p", "no:benchmark", "-p", "no:hypothesispytest"]
LEAN += ["-p", "no:xdist", "-p", "no:html", "-p", "no:metadata"]

# SIGTERM: the fault is reverted, then pytest dies of SIGTERM as it would without the plugin.
EXPECTED_RC = {"exception": 1, "breach": 1, "keyboard": 2, "sigterm": -signal.SIGTERM, "sigkill": -signal.SIGKILL}


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return any(s not in (None, "Z") for s in (status(p.pid) for p in _group(pgid)))


def _group(pgid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                found.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def _eventually(check: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


class Case:
    """The target of one matrix cell and the outside checks of what a fault may leave."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind = kind
        self.tmp = tmp
        self.sleeper: subprocess.Popen[bytes] | None = None
        self.ns: NetNamespace | None = None
        self.args = ""

    def __enter__(self) -> Case:
        if self.kind == "pause":
            self.sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
            self.args = str(self.sleeper.pid)
        elif self.kind in ("io_stress", "disk_fill"):
            self.args = str(self.tmp / "target")
            Path(self.args).mkdir()
        elif self.kind == "port_blackhole":
            why = NetNamespace.unavailable()
            if why:
                pytest.skip(why)
            self.ns = NetNamespace().create()
            self.args = self.ns.name
        return self

    def __exit__(self, *exc: object) -> None:
        if self.sleeper is not None:
            self.sleeper.kill()
            self.sleeper.wait()
        if self.ns is not None:
            self.ns.delete()

    def leftovers(self, info: dict[str, Any]) -> list[str]:
        """What the fault left behind, seen from outside; empty when clean."""
        left = []
        if self.sleeper is not None and status(self.sleeper.pid) == "T":
            left.append(f"pid {self.sleeper.pid} is still stopped")
        if "pid" in info and self.kind.endswith("_stress") and _group_alive(int(info["pid"])):
            left.append(f"stress process group {info['pid']} is alive")
        if "file" in info and Path(info["file"]).exists():
            left.append(f"fill file {info['file']} exists")
        if "workdir" in info and Path(info["workdir"]).exists():
            left.append(f"io directory {info['workdir']} exists")
        if self.ns is not None:
            tables = [t for t in self.ns.nft_tables() if t.startswith("resiliency_")]
            if tables:
                left.append(f"nftables tables {tables} remain in {self.ns.name}")
        return left


def _helpers(journal_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if any(str(journal_dir) in part for part in cmdline):
            found.append(proc)
    return found


@pytest.fixture
def upstream() -> Iterator[int]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("how", INTERRUPTIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_fault_is_rolled_back(
    kind: str, how: str, pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, upstream: int
) -> None:
    journal_dir = tmp_path / "journal"
    state = tmp_path / "state.json"
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TEST)
    with Case(kind, tmp_path) as case:
        monkeypatch.setenv("MATRIX_KIND", kind)
        monkeypatch.setenv("MATRIX_HOW", how)
        monkeypatch.setenv("MATRIX_ARGS", case.args)
        monkeypatch.setenv("MATRIX_STATE", str(state))
        monkeypatch.setenv("MATRIX_UPSTREAM_PORT", str(upstream))
        # After SIGKILL the fault must outlive pytest (until recovery), so give it time.
        monkeypatch.setenv("MATRIX_MAX_DURATION", "60s" if how == "sigkill" else "20s")
        result = pytester.runpytest_subprocess(*LEAN, f"--resiliency-journal-dir={journal_dir}", timeout=90)
        assert result.ret == EXPECTED_RC[how], result.stdout.str()
        info = json.loads(state.read_text())
        if how == "sigkill":
            if kind == "latency":
                assert _eventually(lambda: not _helpers(journal_dir) and not any(
                    "proxy_server.py" in " ".join(p.cmdline()) and str(upstream) in " ".join(p.cmdline())
                    for p in psutil.process_iter() if _safe_cmdline(p)
                )), "the proxy outlived its pytest"  # fmt: skip
            else:
                assert case.leftovers(info), "SIGKILL left nothing to recover: the case proves nothing"
            recovered = pytester.runpytest_subprocess(
                *LEAN, "--resiliency-recover", f"--resiliency-journal-dir={journal_dir}", timeout=60
            )
            assert recovered.ret == 0, recovered.stdout.str()
            recovered.stdout.fnmatch_lines(["*recovered 1 fault(s)*"])
        elif how == "sigterm":
            # pytest died of SIGTERM right after the revert (no session end to dump toxics at): the
            # journal entry, removed only after a clean revert, is gone without any recovery run.
            assert list((journal_dir / "active").glob("*.json")) == []
        else:
            toxics = tmp_path / "state.json.toxics"
            if kind == "latency":
                assert json.loads(toxics.read_text()) == [], "the proxy still holds a toxic"
        assert _eventually(lambda: not case.leftovers(info)), case.leftovers(info)
        assert list((journal_dir / "active").glob("*.json")) == []
        assert _eventually(lambda: not _helpers(journal_dir), 5.0), "an expiry helper is still running"


def _safe_cmdline(proc: psutil.Process) -> bool:
    try:
        return bool(proc.cmdline())
    except psutil.Error:
        return False


@pytest.mark.slow
def test_pause_expires_by_itself_after_pytest_is_sigkilled(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No recovery run at all: the detached expiry helper resumes the process at max_duration."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pytester.makepyfile(
            f"""
            import os, signal
            from pytest_resiliency import faults

            def test_killed():
                with faults.pause({sleeper.pid}, max_duration="1s"):
                    os.kill(os.getpid(), signal.SIGKILL)
            """
        )
        result = pytester.runpytest_subprocess(*LEAN, f"--resiliency-journal-dir={tmp_path / 'j'}", timeout=60)
        assert result.ret == -signal.SIGKILL
        assert status(sleeper.pid) == "T"  # the fault outlived pytest...
        assert _eventually(lambda: status(sleeper.pid) != "T", 5.0)  # ...until its own deadline
        assert _eventually(lambda: not list((tmp_path / "j" / "active").glob("*.json")), 2.0)
    finally:
        sleeper.kill()
        sleeper.wait()
