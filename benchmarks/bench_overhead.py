"""Plugin overhead: collection and a full run of 500 trivial tests, with and without the plugin,
and the per-experiment cost of an instant fault with no load, side by side with ``chaos run``.

"Without the plugin" is ``-p no:resiliency``: the entry point is blocked, so the module is never
imported, which is what not having it installed costs. Runs alternate (with, without, with…) so
machine noise hits both alike; the ratio of medians is the figure to quote.

Usage: python benchmarks/bench_overhead.py [--rounds 7] [--tests 500] [--experiments 100]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
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


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def pytest_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:benchmark", *args]


def compare(name: str, cwd: Path, with_args: list[str], without_args: list[str], rounds: int) -> None:
    with_t, without_t = [], []
    for _ in range(rounds):
        with_t.append(timed(pytest_cmd(*with_args), cwd))
        without_t.append(timed(pytest_cmd(*without_args), cwd))
    ratio = statistics.median(with_t) / statistics.median(without_t)
    print(
        f"{name:<34} with {statistics.median(with_t):6.3f}s [{min(with_t):.3f}..{max(with_t):.3f}]"
        f"  without {statistics.median(without_t):6.3f}s [{min(without_t):.3f}..{max(without_t):.3f}]"
        f"  ratio {ratio:.3f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tests", type=int, default=500)
    parser.add_argument("--experiments", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pytest.ini").write_text("[pytest]\n")
        trivial = root / "trivial"
        trivial.mkdir()
        (trivial / "test_trivial.py").write_text("".join(TRIVIAL.format(i=i) for i in range(args.tests)))
        print(f"{args.tests} trivial tests, {args.rounds} alternating rounds (median [min..max])")
        compare(
            "collect-only",
            root,
            ["--collect-only", "trivial"],
            ["--collect-only", "trivial", "-p", "no:resiliency"],
            args.rounds,
        )
        compare("full run", root, ["trivial"], ["trivial", "-p", "no:resiliency"], args.rounds)

        exp_dir = root / "experiments"
        exp_dir.mkdir()
        (exp_dir / "test_exp.py").write_text(EXPERIMENT.format(n=args.experiments))
        base_dir = root / "baseline"
        base_dir.mkdir()
        (base_dir / "test_base.py").write_text(BASELINE.format(n=args.experiments))
        per_exp, per_base = [], []
        for _ in range(args.rounds):
            per_exp.append(timed(pytest_cmd("experiments"), root) / args.experiments)
            per_base.append(timed(pytest_cmd("baseline", "-p", "no:resiliency"), root) / args.experiments)
        overhead = [(e - b) * 1000 for e, b in zip(per_exp, per_base, strict=True)]
        print(
            f"per experiment (instant fault, no load): {statistics.median(overhead):.2f} ms "
            f"[{min(overhead):.2f}..{max(overhead):.2f}] over a plain test "
            f"(includes pytest start-up spread over {args.experiments} tests)",
            flush=True,
        )
        chaos = shutil.which("chaos")
        if chaos is None:
            print("chaos run: not installed (pip install chaostoolkit) - skipped")
            return
        ctk = root / "experiment.json"
        ctk.write_text(json.dumps(CTK_EXPERIMENT))
        command = [chaos, "--no-log-file", "run", "--journal-path", str(root / "journal.json"), str(ctk)]
        runs = [timed(command, root) for _ in range(args.rounds)]
        status = json.loads((root / "journal.json").read_text())["status"]
        if status != "completed":  # chaos exits 0 even when it could not run the experiment
            raise SystemExit(f"the Chaos Toolkit experiment did not complete (status {status!r})")
        single = [timed(pytest_cmd("experiments", "-k", "test_instant_fault[0]"), root) for _ in range(args.rounds)]
        print(
            f"one experiment, whole process: chaos run {statistics.median(runs) * 1000:.0f} ms "
            f"[{min(runs) * 1000:.0f}..{max(runs) * 1000:.0f}]  pytest {statistics.median(single) * 1000:.0f} ms "
            f"[{min(single) * 1000:.0f}..{max(single) * 1000:.0f}]",
            flush=True,
        )


if __name__ == "__main__":
    main()
