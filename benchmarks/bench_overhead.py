"""Plugin overhead: what installing pytest-resiliency costs a suite that does not use it, and the
per-experiment cost of a suite that does, side by side with ``chaos run``.

"Without the plugin" is ``-p no:resiliency``: the entry point is blocked, so the package is never
imported, which is what not having it installed costs. Cases: a trivial one-test run, and 500
trivial tests collected (``--collect-only``) and run, serially and with ``-n 2``.

Two measures, side by side in one run:

* **instructions** (``--instructions``, needs valgrind): user-space instructions of every process
  of the run (``valgrind --tool=cachegrind --cache-sim=no --trace-children=yes``), which do not
  depend on what else the machine is doing. One round is enough: counts repeat within ~0.1 %.
* **wall time**: rounds alternate (with, without, with...) so machine noise hits both alike; the
  ratio of medians is the figure, with min and max. On a shared machine it decides only big
  differences.

Each in two bytecode-cache modes: ``writable`` (a private ``PYTHONPYCACHEPREFIX``, warmed first:
every module loads from cached bytecode) and ``PYTHONDONTWRITEBYTECODE=1`` with no cache prefix
(a read-only image: whatever has no ``__pycache__`` — e.g. an editable or source install — is
compiled on every start).

``--autoload`` adds what the other auto-loaded plugins of this environment cost (each blocked in
turn with ``-p no:NAME``) and what ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 -p resiliency -p xdist -p
html`` saves. ``--experiments N`` (default 100) measures the per-experiment cost; ``chaos run``
is timed when installed.

Usage: python benchmarks/bench_overhead.py [--instructions] [--rounds 7] [--tests 500] [--autoload]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TRIVIAL = "def test_{i}():\n    assert {i} == {i}\n"

EXPERIMENT = """
import pytest
from pytest_resiliency import faults

@pytest.mark.parametrize("i", range({n}))
@pytest.mark.resiliency()
def test_instant_fault(experiment, i):
    with faults.custom(lambda: None, lambda: None, name="instant"):
        pass
"""

BASELINE = """
import pytest

@pytest.mark.parametrize("i", range({n}))
def test_instant_fault(i):
    pass
"""

CTK_EXPERIMENT = {
    "version": "1.0.0",
    "title": "instant action with one probe before and after",
    "description": "the Chaos Toolkit equivalent of one resiliency test with an instant fault",
    "steady-state-hypothesis": {
        "title": "healthy",
        "probes": [
            {
                "type": "probe",
                "name": "always-true",
                "tolerance": True,
                "provider": {"type": "python", "module": "os.path", "func": "exists", "arguments": {"path": "/"}},
            }
        ],
    },
    "method": [
        {
            "type": "action",
            "name": "instant",
            "provider": {"type": "python", "module": "os.path", "func": "isdir", "arguments": {"s": "/"}},
        }
    ],
    "rollbacks": [],
}

OFF = ["-p", "no:resiliency"]
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def pytest_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]


class Mode:
    """A bytecode-cache mode: the environment every command of the mode runs with."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.env = env


def modes(tmp: Path) -> list[Mode]:
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    writable = {**base, "PYTHONPYCACHEPREFIX": str(tmp / "pycache")}
    read_only = {**base, "PYTHONDONTWRITEBYTECODE": "1"}
    return [Mode("writable cache", writable), Mode("PYTHONDONTWRITEBYTECODE=1", read_only)]


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def instructions(cmd: list[str], cwd: Path, env: dict[str, str]) -> int:
    """User-space instructions of the command and every process it starts (valgrind cachegrind)."""
    grind = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--trace-children=yes"]
    grind += ["--cachegrind-out-file=/dev/null"]
    out = subprocess.run([*grind, *cmd], cwd=cwd, env=env, check=False, capture_output=True, text=True)
    counts = [int(m.group(1).replace(",", "")) for m in _REFS.finditer(out.stderr)]
    if not counts:
        raise SystemExit(f"valgrind printed no instruction count for {' '.join(cmd)}:\n{out.stderr[-2000:]}")
    return sum(counts)


def spread(values: list[float], scale: float = 1.0, fmt: str = "{:.3f}") -> str:
    return (
        f"{fmt.format(statistics.median(values) * scale)} "
        f"[{fmt.format(min(values) * scale)}..{fmt.format(max(values) * scale)}]"
    )


def compare_time(name: str, cwd: Path, env: dict[str, str], on: list[str], off: list[str], rounds: int) -> None:
    with_t, without_t = [], []
    run(pytest_cmd(*on), cwd, env)  # warm the bytecode cache and the page cache
    run(pytest_cmd(*off), cwd, env)
    for _ in range(rounds):
        with_t.append(run(pytest_cmd(*on), cwd, env))
        without_t.append(run(pytest_cmd(*off), cwd, env))
    ratio = statistics.median(with_t) / statistics.median(without_t)
    print(f"  {name:<28} time   with {spread(with_t)} s  without {spread(without_t)} s  ratio {ratio:.3f}", flush=True)


def compare_instructions(name: str, cwd: Path, env: dict[str, str], on: list[str], off: list[str]) -> None:
    run(pytest_cmd(*on), cwd, env)  # warm the bytecode cache
    run(pytest_cmd(*off), cwd, env)
    with_i = instructions(pytest_cmd(*on), cwd, env)
    without_i = instructions(pytest_cmd(*off), cwd, env)
    print(
        f"  {name:<28} instr  with {with_i / 1e6:8.1f} M  without {without_i / 1e6:8.1f} M  "
        f"ratio {with_i / without_i:.4f}  (+{(with_i - without_i) / 1e6:.1f} M)",
        flush=True,
    )


def autoloaded() -> list[str]:
    """Entry-point names of the pytest plugins installed here, except ours."""
    names = {ep.name for ep in importlib.metadata.entry_points(group="pytest11")}
    return sorted(names - {"resiliency"})


def autoload_section(root: Path, mode: Mode, measure: Callable[[list[str], dict[str, str]], float], unit: str) -> None:
    print(f"\nother auto-loaded plugins, trivial run, {mode.name} ({unit}; cost = default - with it blocked)")
    lean_env = {**mode.env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    run(pytest_cmd("one"), root, mode.env)  # warm the bytecode cache of every plugin
    run(pytest_cmd("one", "-p", "resiliency", "-p", "xdist", "-p", "html"), root, lean_env)
    full = measure(["one"], mode.env)
    print(f"  {'all auto-loaded (default)':<44} {full:10.1f}")
    for name in autoloaded():
        blocked = measure(["one", "-p", f"no:{name}"], mode.env)
        print(f"  {'-p no:' + name:<44} {blocked:10.1f}   costs {full - blocked:8.1f} ({(full - blocked) / full:6.1%})")
    lean = measure(["one", "-p", "resiliency", "-p", "xdist", "-p", "html"], lean_env)
    print(
        f"  {'PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 -p resiliency -p xdist -p html':<44} {lean:10.1f}"
        f"   saves {full - lean:8.1f} ({(full - lean) / full:6.1%})"
    )
    bare = measure(["one"], lean_env)
    print(f"  {'PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 (pytest alone)':<44} {bare:10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating timing rounds (0: no timing)")
    parser.add_argument("--tests", type=int, default=500)
    parser.add_argument("--experiments", type=int, default=100, help="per-experiment cost (0: skip)")
    parser.add_argument("--instructions", action="store_true", help="also count instructions (valgrind)")
    parser.add_argument("--autoload", action="store_true", help="what the other auto-loaded plugins cost")
    parser.add_argument("--mode", choices=("writable", "dontwrite", "both"), default="both")
    parser.add_argument("--no-cases", action="store_true", help="skip the with/without cases (e.g. --autoload only)")
    parser.add_argument("--case", default="", help="only the cases whose name contains this (e.g. 'tests run')")
    args = parser.parse_args()
    if args.instructions and shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pytest.ini").write_text("[pytest]\n")
        (root / "one").mkdir()
        (root / "one" / "test_one.py").write_text(TRIVIAL.format(i=0))
        (root / "many").mkdir()
        (root / "many" / "test_many.py").write_text("".join(TRIVIAL.format(i=i) for i in range(args.tests)))
        cases = [
            ("trivial run (1 test)", ["one"]),
            (f"{args.tests} tests --collect-only", ["--collect-only", "many"]),
            (f"{args.tests} tests run", ["many"]),
            (f"{args.tests} tests --co -n 2", ["--collect-only", "-n", "2", "many"]),
            (f"{args.tests} tests run -n 2", ["-n", "2", "many"]),
        ]
        package = Path(str(__import__("pytest_resiliency").__file__)).parent
        print(f"python {sys.version.split()[0]}, pytest_resiliency from {package}")
        wanted = {"both": ("w", "P"), "writable": ("w",), "dontwrite": ("P",)}[args.mode]
        selected = [m for m in modes(root) if m.name.startswith(wanted)]
        for mode in [] if args.no_cases else selected:
            cached = (package / "__pycache__").is_dir()
            note = "" if mode.name.startswith("w") else f" (the package has {'a' if cached else 'no'} __pycache__)"
            print(f"\n{mode.name}{note}")
            for name, case in cases:
                if args.case not in name:
                    continue
                if args.instructions:
                    compare_instructions(name, root, mode.env, case, [*case, *OFF])
                if args.rounds:
                    compare_time(name, root, mode.env, case, [*case, *OFF], args.rounds)
        if args.autoload:
            mode = selected[0]
            if args.instructions:
                autoload_section(
                    root, mode, lambda a, env: instructions(pytest_cmd(*a), root, env) / 1e6, "M instructions"
                )
            if args.rounds:
                autoload_section(
                    root,
                    mode,
                    lambda a, env: statistics.median(run(pytest_cmd(*a), root, env) for _ in range(args.rounds)) * 1e3,
                    "ms, median",
                )
        if args.experiments:
            per_experiment(root, selected[0].env, args.rounds or 5, args.experiments)


def per_experiment(root: Path, env: dict[str, str], rounds: int, n: int) -> None:
    exp_dir = root / "experiments"
    exp_dir.mkdir()
    (exp_dir / "test_exp.py").write_text(EXPERIMENT.format(n=n))
    base_dir = root / "baseline"
    base_dir.mkdir()
    (base_dir / "test_base.py").write_text(BASELINE.format(n=n))
    per_exp, per_base = [], []
    for _ in range(rounds):
        per_exp.append(run(pytest_cmd("experiments"), root, env) / n)
        per_base.append(run(pytest_cmd("baseline", *OFF), root, env) / n)
    overhead = [(e - b) for e, b in zip(per_exp, per_base, strict=True)]
    print(
        f"\nper experiment (instant fault, no load): {spread(overhead, 1000, '{:.2f}')} ms over a plain test "
        f"(includes pytest start-up spread over {n} tests)",
        flush=True,
    )
    chaos = shutil.which("chaos")
    if chaos is None:
        print("chaos run: not installed (pip install chaostoolkit) - skipped")
        return
    ctk = root / "experiment.json"
    ctk.write_text(json.dumps(CTK_EXPERIMENT))
    command = [chaos, "--no-log-file", "run", "--journal-path", str(root / "journal.json"), str(ctk)]
    runs = [run(command, root, env) for _ in range(rounds)]
    status = json.loads((root / "journal.json").read_text())["status"]
    if status != "completed":  # chaos exits 0 even when it could not run the experiment
        raise SystemExit(f"the Chaos Toolkit experiment did not complete (status {status!r})")
    single = [run(pytest_cmd("experiments", "-k", "test_instant_fault[0]"), root, env) for _ in range(rounds)]
    print(
        f"one experiment, whole process: chaos run {spread(runs, 1000, '{:.0f}')} ms  "
        f"pytest {spread(single, 1000, '{:.0f}')} ms",
        flush=True,
    )


if __name__ == "__main__":
    main()
