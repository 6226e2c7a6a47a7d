"""Secret scrubbing speed on adversarial input: milliseconds per MB, and how it grows with size.

The first group of inputs is built to make a regular expression work hard: one endless word
(the old quadratic case), secret names without a value, separators without names, ``user:``
without ``@``, dots (the truncation mark the partial-secret net looks for), and an ordinary log
with a few secrets. The second group is nothing but secrets (a replacement every 10-21 bytes).
Every input is scrubbed at 1 MB and 4 MB with five planted environment secrets; the figure is the median CPU time of
``--rounds`` runs, and the 4 MB / 1 MB ratio shows linear growth (about 4).

Usage: python benchmarks/bench_scrub.py [--rounds 5] [--mb 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from pytest_resiliency.report.secrets import scrub_text

KNOWN = [
    "fAkEsEcReTkEy/0123456789abcdefGHIJKLMNOP",
    "IQoJb3JpZ2luX2VjEFAKEFAKEFAKEsessiontoken0123456789",
    "plantedDbPassw0rd",
    "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    "xoxb-1234-5678-abcdefghijkl",
]


def _fill(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


# Built against the matcher: long runs and near-misses that make a regex rescan or backtrack,
# with few or no secrets in them. Target: <= 50 ms per MB, growing linearly.
ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "one long word": lambda n: "x" * n,
    "base64url token": lambda n: _fill("aZ09-_", n),
    "secret names, no value": lambda n: _fill("password_token_secret_", n),
    "names, separator, no value": lambda n: _fill('api_key:"\n', n),
    "separators only": lambda n: _fill(":=", n),
    "scheme without @": lambda n: _fill("http://user:", n),
    "dots": lambda n: "." * n,
    "words, short values": lambda n: _fill("token 1234567 ", n),
    "upper case runs": lambda n: "A" * n,
    "log, a few secrets": lambda n: _fill(
        "GET /orders?id=42 200 3ms user=bob region=eu-west-1 " * 40
        + 'connecting to http://orders:hunter22@db:5432/x password=s3cret-Value \\"api_key\\": \\"k-123456789\\"\n',
        n,
    ),
}
# Nothing but secrets: every few bytes a redaction. Linear, but each replacement costs about a
# microsecond of the regex engine's and Python's time, so these are reported per replacement.
DENSE: dict[str, Callable[[int], str]] = {
    "name:value pairs, 1 per 10 B": lambda n: _fill('password:"', n),
    "AWS key ids, 1 per 21 B": lambda n: _fill("AKIAZZZZFAKE0000TEST ", n),
    "cut known secrets, 1 per 19 B": lambda n: _fill("fAkEsEcReTkEy/01...", n),
}


def measure(text: str, rounds: int) -> float:
    """Median CPU seconds of ``rounds`` scrubs of ``text`` (CPU time: the machine is shared, and
    waiting for a core is not the scrubber's cost)."""
    times = []
    for _ in range(rounds):
        began = time.process_time()
        scrub_text(text, KNOWN)
        times.append(time.process_time() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mb", type=float, default=1.0, help="size of the small input in MB (the large is 4x)")
    args = parser.parse_args()
    small = int(args.mb * 1_000_000)
    for title, inputs in (("built against the matcher", ADVERSARIAL), ("dense secrets", DENSE)):
        print(f"{title:32} {'ms/MB at 1x':>12} {'ms/MB at 4x':>12} {'4x/1x time':>11}")
        worst = 0.0
        for name, make in inputs.items():
            one, four = measure(make(small), args.rounds), measure(make(4 * small), args.rounds)
            per_mb_one, per_mb_four = one * 1000 / args.mb, four * 1000 / (4 * args.mb)
            worst = max(worst, per_mb_one, per_mb_four)
            print(f"  {name:30} {per_mb_one:12.1f} {per_mb_four:12.1f} {four / one:11.2f}")
        print(f"  worst: {worst:.1f} ms/MB\n")


if __name__ == "__main__":
    main()
