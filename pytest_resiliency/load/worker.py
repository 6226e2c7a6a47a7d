"""Join a pytest-resiliency load as a locust worker, from this host or another one.

    python -m pytest_resiliency.load.worker --master-host 10.0.0.5 --master-port 5557 [-f locustfile.py]

Runs ``locust --worker`` with the plugin's sink and the same scenario as the master (the
built-in HTTP scenario unless ``-f`` names the user's locustfiles). The sink ships this
worker's request events to the master, which writes them to the file pytest tails.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .spec import HTTP_LOCUSTFILE, SINK_LOCUSTFILE


def command(master_host: str, master_port: int, locustfiles: Sequence[str] = ()) -> list[str]:
    files = [str(SINK_LOCUSTFILE), *(locustfiles or [str(HTTP_LOCUSTFILE)])]
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        ",".join(files),
        "--worker",
        "--master-host",
        master_host,
        "--master-port",
        str(master_port),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pytest_resiliency.load.worker", description=__doc__.split("\n")[0])
    parser.add_argument("--master-host", required=True, help="host of the pytest machine running the locust master")
    parser.add_argument("--master-port", type=int, default=5557, help="the master's port (traffic.master_port)")
    parser.add_argument("-f", "--locustfile", action="append", default=[], help="the user's locustfile (repeatable)")
    args = parser.parse_args(argv)
    cmd = command(args.master_host, args.master_port, [os.path.abspath(f) for f in args.locustfile])
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
