"""Join a pytest-resiliency load as a locust worker, from this host or another one.

    python3 -m pytest_resiliency.load.worker --master-host 10.0.0.5 --master-port 5557 [--name load-a]

Runs ``locust --worker`` with the plugin's sink. The locustfiles (the sink, the built-in
scenario or the user's file) are fetched from the master over its one port, so the load
host needs only pytest-resiliency and whatever the user's locustfile imports; ``-f`` uses
local copies instead. The worker introduces itself by ``--name`` (default ``host:pid``):
that name is in every error about it. The master refuses a worker whose locust or
pytest-resiliency version differs from its own, or whose clock is off by more than the
allowed skew.

Test hook: ``RESILIENCY_TEST_CLOCK_OFFSET=<seconds>`` makes the worker's clock run that far
ahead (negative: behind), to check that offsets are measured, corrected and refused.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence

from .records import WORKER_NAME_ENV, WORKER_TMP_ENV

TMP_PREFIX = "resiliency-worker-"


def remove_stale_dirs() -> None:
    """Remove the private directories of workers that no longer run (named by their pid)."""
    root = tempfile.gettempdir()
    for entry in os.listdir(root):
        if not entry.startswith(TMP_PREFIX):
            continue
        pid = entry[len(TMP_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(root, entry), ignore_errors=True)
        except PermissionError:
            pass  # alive, another user's


def command(master_host: str, master_port: int, locustfiles: Sequence[str] = ()) -> list[str]:
    """``locust --worker``; without locustfiles it downloads them from the master (``-f -``)."""
    from .spec import SINK_LOCUSTFILE

    files = ",".join([str(SINK_LOCUSTFILE), *locustfiles]) if locustfiles else "-"
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        files,
        "--worker",
        "--master-host",
        master_host,
        "--master-port",
        str(master_port),
    ]


def _port(value: str) -> int:
    from .. import validate

    try:
        return validate.port(int(value), "--master-port")
    except ValueError as exc:  # not a number, or out of range (ConfigError is a ValueError)
        raise argparse.ArgumentTypeError(f"{value!r} is not a TCP port (1-65535)") from exc


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python3 -m pytest_resiliency.load.worker", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--master-host", required=True, help="address of the pytest machine's locust master")
    parser.add_argument("--master-port", type=_port, default=5557, help="the master's port (load(master_port=...))")
    parser.add_argument(
        "--name", default=None, help="this worker's name in the run's marks and errors (default host:pid)"
    )
    parser.add_argument(
        "-f",
        "--locustfile",
        action="append",
        default=[],
        help="use this local copy of the user's locustfile (repeatable) instead of fetching it from the master",
    )
    args = parser.parse_args(argv)
    if args.name is not None and not args.name.strip():
        parser.error("--name must not be empty")
    for path in args.locustfile:
        if not os.path.isfile(path):
            parser.error(f"-f {path!r} is not a file on this host")
    env = dict(os.environ)
    if args.name:
        env[WORKER_NAME_ENV] = args.name
    # Fetched locustfiles land in tempfile.gettempdir(): give this worker its own directory so
    # two workers on one host never read each other's half-written copies. The sink removes it
    # at quit; a SIGKILLed worker's is removed by the next worker started on the host.
    remove_stale_dirs()
    private = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-")  # the pid survives the exec
    env["TMPDIR"] = private
    env[WORKER_TMP_ENV] = private
    cmd = command(args.master_host, args.master_port, [os.path.abspath(f) for f in args.locustfile])
    sys.stdout.flush()
    os.execve(cmd[0], cmd, env)


if __name__ == "__main__":
    main()
