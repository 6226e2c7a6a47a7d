"""RPO accuracy: a server that loses exactly K acknowledged writes at a known time.

Locust writes at ``--rate`` requests/s (half of them writes) through the ``load`` controller; the
fault makes the ground-truth server forget its K most recent writes (an unsynced tail lost in a
crash) and answer 503 for a moment. After recovery the ledger is read back. Reported per K:
lost-count error (target: 0 in every run) and RPO-time error against the server's own clock
(t_inject - store time of the earliest lost write; the client's ack comes a little after the
store, so the error is slightly negative); and, by a full scan of the server's store after
the load stopped, how many stored writes the ledger does not hold at all (target: 0; locust
kills its users mid-request at the stop, so writes in flight then must still be on the ledger).

Usage: python benchmarks/bench_rpo_accuracy.py [--runs 10] [--losses 1,10,50] [--rate 200] [--ack-delay 0.05]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stats import mmm
from ground_truth import GroundTruthServer

from pytest_resiliency import faults
from pytest_resiliency.budget import Criteria
from pytest_resiliency.experiment import Experiment
from pytest_resiliency.load.controller import Traffic
from pytest_resiliency.load.spec import make_spec


def one_run(k: int, rate: int, ack_delay: float) -> tuple[int, float, int]:
    server = GroundTruthServer("503", ack_delay=ack_delay)
    exp = Experiment("bench", criteria=Criteria(successes=5, window=0.3, timeout=30.0))
    lost_truth: dict[str, float] = {}

    def crash() -> None:
        with server.lock:
            stored = dict(server.store)
        server.broken = True
        for key in server.lose_last(k):
            lost_truth[key] = stored[key]

    try:
        with tempfile.TemporaryDirectory() as workdir:
            traffic = Traffic(make_spec(server.url, users=8, rate=rate, writes=0.5), exp, Path(workdir))
            exp.add_source(traffic)
            try:
                traffic.start().wait_steady()
                deadline = time.monotonic() + 30
                while len(server.store) < 2 * k:  # a backlog of acknowledged writes to lose from
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"fewer than {2 * k} writes stored in 30 s")
                    time.sleep(0.01)
                fault = exp.inject(faults.custom(crash, server.fix, name="crash"))
                time.sleep(0.2)
                fault.revert()
                exp.wait_recovered(timeout=10)
            finally:
                exp.finish(settle=False)
            ledger = exp.verify_writes(traffic.read_back)
            on_ledger = set(exp.timeline.snapshot().write_keys)
            with server.lock:
                unledgered = len(set(server.store) - on_ledger)
    finally:
        server.close()
    assert fault.record is not None and ledger.rpo is not None
    assert len(lost_truth) == k, f"the server lost {len(lost_truth)} writes, not {k}"
    truth_rpo = fault.record.injected_at - min(lost_truth.values())
    return ledger.lost - len(lost_truth), ledger.rpo - truth_rpo, unledgered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--losses", default="1,10,50")
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument(
        "--ack-delay", type=float, default=0.0, help="seconds the server takes to answer a stored write"
    )
    args = parser.parse_args()
    print(f"{args.runs} runs per K at {args.rate} req/s (50% writes), ack delay {args.ack_delay:g} s")
    print("median [min .. max]")
    print(f"{'K':>4}  {'lost-count error':>22}  {'RPO-time error':>30}  {'stored, not on the ledger':>26}")
    for k in (int(v) for v in args.losses.split(",")):
        results = [one_run(k, args.rate, args.ack_delay) for _ in range(args.runs)]
        count_errors = [float(c) for c, _, _ in results]
        time_errors = [t for _, t, _ in results]
        unledgered = [u for _, _, u in results]
        print(
            f"{k:>4}  {mmm(count_errors):>22}  {mmm(time_errors, 1000, 'ms'):>30}"
            f"  {sum(unledgered):>10} in {len(results)} runs"
            f"   {'exact in every run' if not any(count_errors) and not any(unledgered) else 'NOT EXACT'}",
            flush=True,
        )


if __name__ == "__main__":
    main()
