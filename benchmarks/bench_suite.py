"""Example suite speed: the README's main job serially and with ``-n 2``, side by side.

Issue 17's targets for the example suite (``resiliency_tests``): at most 40 s serially and
18 s with ``-n 2`` on 2 cores. Each round runs every selected scope serially and with
``-n 2`` (alternating which goes first, so machine noise hits both alike) and measures:

* **wall time** of the whole ``python -m pytest`` command (start-up, collection, reports);
* **CPU seconds** (user + system) of the pytest process and every process it reaped: xdist
  workers, locust, the demo services, stress-ng, the datastore servers. On a machine shared
  with other work this is the steadier figure: other processes lengthen the wall time, not
  the suite's own CPU time;
* **CPU use**: CPU seconds / wall time, the cores the suite kept busy on average;
* the **ratio to the target** (wall / target; <= 1.00 meets it), and the load average before
  and after, so a reader sees how shared the machine was.

Scopes: ``main`` is the README's main job exactly (every experiment, HTML + JUnit + JSON
reports, into a temporary directory); ``not-aws`` is ``-m "not aws"`` without reports;
``demo`` is ``-m "not aws and not datastore"``, the scope of the issue's figures (the datastore
experiments came later). ``--before REF`` also runs the suite as it was at git ``REF`` (its
``resiliency_tests``, with this checkout's plugin) in the same rounds, for a ratio measured side
by side.

Bytecode: by default the runs use a private, warmed ``PYTHONPYCACHEPREFIX`` (and drop
``PYTHONDONTWRITEBYTECODE``), as a normal checkout caches bytecode; ``--cold`` keeps the
environment as it is (where every process recompiles every module of the repository).

Usage: python benchmarks/bench_suite.py [--rounds 1] [--scope main --scope not-aws] [--before REF]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"serial": 40.0, "-n 2": 18.0}  # seconds, issue 17
MODES = {"serial": [], "-n 2": ["-n", "2"]}
SCOPES = {
    "main": [],  # + the reports, see _command
    "not-aws": ["-m", "not aws"],
    "demo": ["-m", "not aws and not datastore"],
}
SUMMARY = re.compile(r"^=* ?(\d+ (?:passed|failed|xfailed|skipped|errors?)\b.*?) in [\d.]+s", re.M)


@dataclass
class Runs:
    """The measurements of one (suite, scope, mode) cell."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    outcome: str = ""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _environment(cold: bool, cache: Path, suite_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    # This checkout's plugin, and the suite's own root first (for --before, an old copy).
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([str(suite_root), str(ROOT), env.get("PYTHONPATH", "")]))
    env.setdefault("RESILIENCY_JOURNAL_DIR", str(cache.parent / "journal"))
    if not cold:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def _command(scope: str, mode: str, reports: Path) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "resiliency_tests", "-p", "no:cacheprovider", "-q", *MODES[mode]]
    cmd += SCOPES[scope]
    if scope == "main":
        cmd += [
            f"--html={reports}/report.html",
            "--self-contained-html",
            f"--junitxml={reports}/junit.xml",
            f"--resiliency-json={reports}/journal.json",
        ]
    return cmd


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of one run and its outcome line; a failed run is reported, not fatal."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    found = SUMMARY.findall(proc.stdout)
    outcome = found[-1] if found else "?"
    if proc.returncode != 0:
        failed = re.findall(r"^FAILED (\S+)", proc.stdout, flags=re.M)
        print(f"{' '.join(cmd)}: exit {proc.returncode}; failed: {', '.join(failed) or '?'}", file=sys.stderr)
        outcome = f"FAILED ({outcome})"
    return wall, cpu, outcome


def _old_suite(ref: str, into: Path) -> Path:
    """The suite as it was at ``ref``: its resiliency_tests and root pytest config, extracted."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "resiliency_tests", "pytest.ini", "conftest.py"],
        capture_output=True,
        check=True,
    )
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def _fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.median(values):.1f} [{min(values):.1f} .. {max(values):.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--scope", action="append", choices=sorted(SCOPES), help="repeatable (default: main, not-aws)")
    parser.add_argument("--before", metavar="REF", help="also run the suite as it was at this git ref, side by side")
    parser.add_argument("--cold", action="store_true", help="keep the environment's bytecode settings")
    args = parser.parse_args()
    scopes = args.scope or ["main", "not-aws"]
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")

    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        work = Path(tmp)
        cache = work / "pycache"
        suites = {"this": ROOT}
        if args.before:
            suites[f"at {args.before}"] = _old_suite(args.before, work / "before")
        if not args.cold:  # warm the private bytecode cache: collection imports every module
            for root in suites.values():
                env = _environment(False, cache, root)
                collect = ["resiliency_tests", "--collect-only", "-q", "-p", "no:cacheprovider"]
                subprocess.run(
                    [sys.executable, "-m", "pytest", *collect],
                    cwd=root,
                    env=env,
                    capture_output=True,
                    check=False,
                )
        cells: dict[tuple[str, str, str], Runs] = {}
        load_before = os.getloadavg()
        for r in range(args.rounds):
            modes = list(MODES) if r % 2 == 0 else list(MODES)[::-1]
            for scope in scopes:
                for mode in modes:
                    for name, root in suites.items():
                        reports = work / f"reports-{r}-{scope}-{mode.replace(' ', '')}-{len(name)}"
                        wall, cpu, outcome = _run(
                            _command(scope, mode, reports), root, _environment(args.cold, cache, root)
                        )
                        cell = cells.setdefault((name, scope, mode), Runs())
                        cell.wall.append(wall)
                        cell.cpu.append(cpu)
                        cell.outcome = outcome
                        print(
                            f"round {r + 1} {name:>10} {scope:>8} {mode:>6}: "
                            f"{wall:6.1f} s wall, {cpu:6.1f} s CPU, {outcome}",
                            flush=True,
                        )
        load_after = os.getloadavg()

    print()
    print(f"{os.cpu_count()} CPUs; load average before {load_before[0]:.1f}, after {load_after[0]:.1f} (1 min)")
    print(f"bytecode: {'as in the environment (--cold)' if args.cold else 'private warmed PYTHONPYCACHEPREFIX'}")
    print()
    print("| suite | scope | mode | wall (s) | CPU (s) | CPU use (cores) | wall / target | outcome (last round) |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, scope, mode), cell in cells.items():
        wall, cpu = statistics.median(cell.wall), statistics.median(cell.cpu)
        target = TARGETS[mode]
        print(
            f"| {name} | {scope} | {mode} | {_fmt(cell.wall)} | {_fmt(cell.cpu)} | {cpu / wall:.2f} "
            f"| {wall / target:.2f} of {target:g} s | {cell.outcome} |"
        )
    if args.before:
        print()
        for scope in scopes:
            for mode in MODES:
                now, then = cells[("this", scope, mode)], cells[(f"at {args.before}", scope, mode)]
                print(
                    f"{scope} {mode}: wall {statistics.median(now.wall) / statistics.median(then.wall):.2f}x, "
                    f"CPU {statistics.median(now.cpu) / statistics.median(then.cpu):.2f}x of {args.before}'s"
                )


if __name__ == "__main__":
    main()
