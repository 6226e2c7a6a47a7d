"""The handler's event: what to run and where the reports go. Validated before anything is fetched."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pytest_resiliency.errors import ConfigError

EVENT_KEYS = ("bucket", "suite", "markers", "args", "path", "reports_bucket", "reports_prefix", "run_id", "timeout")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# Options the handler sets itself: a suite's args must not move or drop the reports.
RESERVED_ARGS = ("--junitxml", "--junit-xml", "--html", "--resiliency-json", "--self-contained-html", "-m")
# pytest's short options that take a value: in a cluster (``-vkfoo``) the rest of it is that value.
_SHORT_WITH_VALUE = frozenset("cHkmnoprW")


class EventError(ConfigError):
    """The event cannot be run; the message names the key and what is accepted."""


@dataclass(frozen=True)
class RunRequest:
    bucket: str
    suite_key: str | None  # a zip object
    suite_prefix: str | None  # or every object under a prefix
    markers: str | None
    args: tuple[str, ...]
    path: str
    reports_bucket: str
    reports_prefix: str
    run_id: str
    timeout: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _string(event: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = event.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise EventError(f"event[{key!r}] must be a non-empty string; got {value!r}")
    return value.strip()


def _suite(value: Any) -> tuple[str | None, str | None]:
    if isinstance(value, str) and value.strip():
        value = {"zip": value} if value.strip().endswith(".zip") else {"prefix": value}
    if isinstance(value, dict) and len(value) == 1:
        kind, where = next(iter(value.items()))
        if kind in ("zip", "prefix") and isinstance(where, str) and where.strip():
            where = where.strip().lstrip("/")
            if kind == "zip":
                return where, None
            return None, where if where.endswith("/") else where + "/"
    raise EventError(
        "event['suite'] must be an S3 key of a zip ('suites/orders.zip'), a key prefix ('suites/orders/'), "
        f"or {{'zip': key}} / {{'prefix': prefix}}; got {value!r}"
    )


def _relative(value: str | None, key: str) -> str:
    if value is None:
        return "."
    parts = value.replace("\\", "/").split("/")
    if value.startswith("/") or ".." in parts:
        raise EventError(f"event[{key!r}]={value!r} must be a relative path inside the suite (no '..', no leading '/')")
    return value


def _short_m(arg: str) -> bool:
    """Whether ``arg`` is ``-m`` in a cluster of short options: ``-mEXPR``, ``-vm EXPR``, ``-qvmaws``."""
    if not arg.startswith("-") or arg.startswith("--"):
        return False
    for letter in arg[1:]:
        if letter == "m":
            return True
        if letter in _SHORT_WITH_VALUE:  # the rest of the cluster is that option's value (-kmain)
            return False
    return False


def parse(event: Any) -> RunRequest:
    """Check ``event`` and fill the defaults; an :class:`EventError` names what is wrong."""
    if not isinstance(event, dict):
        kind = type(event).__name__
        raise EventError(f"the event must be a JSON object with keys {', '.join(EVENT_KEYS)}; got {kind}")
    unknown = sorted(set(event) - set(EVENT_KEYS))
    if unknown:
        raise EventError(f"unknown event key(s) {', '.join(unknown)}; accepted: {', '.join(EVENT_KEYS)}")
    bucket = _string(event, "bucket", required=True)
    assert bucket is not None
    suite_key, suite_prefix = _suite(event.get("suite"))
    args = event.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise EventError(f"event['args'] must be a list of strings (extra pytest arguments); got {args!r}")
    for arg in args:
        if arg.split("=")[0] in RESERVED_ARGS or _short_m(arg):
            raise EventError(f"event['args'] may not contain {arg!r}: the handler sets it (-m: use event['markers'])")
    run_id = _string(event, "run_id") or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
    if not _RUN_ID.match(run_id):
        raise EventError(f"event['run_id']={run_id!r} must be letters, digits, '.', '_' or '-' (at most 128)")
    prefix = _string(event, "reports_prefix") or f"reports/{run_id}/"
    timeout = event.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise EventError(f"event['timeout'] must be a number of seconds > 0; got {timeout!r}")
    return RunRequest(
        bucket=bucket,
        suite_key=suite_key,
        suite_prefix=suite_prefix,
        markers=_string(event, "markers"),
        args=tuple(args),
        path=_relative(_string(event, "path"), "path"),
        reports_bucket=_string(event, "reports_bucket") or bucket,
        reports_prefix=prefix if prefix.endswith("/") else prefix + "/",
        run_id=run_id,
        timeout=None if timeout is None else float(timeout),
    )
