"""The embedded moto server: one per pytest process (xdist worker), reset before each test.

It runs in a thread of this process (``ThreadedMotoServer``) and is reached over real
HTTP on 127.0.0.1, so the clients are exactly the boto3 clients a user has. Port 0
always: a fixed port that is taken makes ``start()`` hang. Never combine it with
``mock_aws()`` in the same process: that wipes the server's state.
"""

from __future__ import annotations

import logging
import os
import urllib.request

from moto.server import ThreadedMotoServer

_AMIS = "MOTO_EC2_LOAD_DEFAULT_AMIS"
# Any AMI id works when the default AMIs are not loaded; tests use this one.
TEST_AMI = "ami-0123456789abcdef0"


class MotoServer:
    """Start, reset and stop one embedded moto server."""

    def __init__(self) -> None:
        # werkzeug logs every request to stderr; keep the test output readable
        self._werkzeug = logging.getLogger("werkzeug")
        self._level = self._werkzeug.level
        self._werkzeug.setLevel(logging.ERROR)
        # moto reads this when a backend is (re)created after each reset: without it every
        # reset reloads ~1200 default AMIs (seconds per test). A moto setting, restored on stop.
        self._amis = os.environ.get(_AMIS)
        os.environ[_AMIS] = "false"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def reset(self) -> None:
        """Forget every resource (``POST /moto-api/reset``): each test starts from an empty account."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", data=b"", method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
        with opener.open(request, timeout=10) as response:
            response.read()

    def stop(self) -> None:
        self._server.stop()
        self._werkzeug.setLevel(self._level)
        if self._amis is None:
            os.environ.pop(_AMIS, None)
        else:
            os.environ[_AMIS] = self._amis
