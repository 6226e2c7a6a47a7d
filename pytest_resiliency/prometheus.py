"""Prometheus evidence: judge recovery on the team's own SLI.

``probes.prometheus(url, query, ...)`` is a probe: a PromQL *instant* query whose result
decides success. Monitor it like any probe (``experiment.monitor(sli, every="200ms")``), or,
after the fault, turn a *range* query into operations with ``sli.import_range(experiment)``:
each evaluation step becomes one operation (``source="prometheus:<name>"``) dated at the
step, so the RTO is measured on what Prometheus saw. ``experiment.measure(source=...)``
gives the measurement on that evidence alone.

Success rule, the same for both: the query must return at least one sample (unless
``empty_ok``), and every sample must satisfy ``below`` / ``above`` when given, else be
non-zero. So a filtering comparison (``up{job="orders"} == 1``, empty when false) and a
``bool`` comparison (``... < bool 0.01``, 0 when false) both work, and so does a raw SLI
with a bound (``error_ratio``, ``below=0.01``).

Resolution: a Prometheus SLI is sampled; it sees a change at the next scrape and a
``rate(...[W])`` or ``increase(...[W])`` trails by up to ``W``. The imported evidence has
one operation per ``step``, so the RTO's uncertainty is at least the step; the window and
the scrape interval bias it late. Choose them small when the RTO budget is small.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import waiting
from .errors import ConfigError
from .probes.base import DEFAULT_PROBE_TIMEOUT, Probe, ProbeFailed
from .validate import duration

if TYPE_CHECKING:
    from .experiment import Experiment

__all__ = ["PrometheusError", "PrometheusProbe", "prometheus"]

DEFAULT_STEP = 0.1
MAX_POINTS = 11_000  # Prometheus refuses a range query of more than 11,000 points per series
FRESH_QUERY = "max(timestamp(up))"  # the time of the newest scrape, which every Prometheus has


class PrometheusError(ProbeFailed):
    """Prometheus could not answer the query (unreachable, bad PromQL, an error status)."""


def _finite(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"probes.prometheus: {what}={value!r} must be a finite number")
    return float(value)


class PrometheusProbe(Probe):
    """A PromQL query and the rule that turns its samples into success; see the module docs."""

    def __init__(
        self,
        url: str,
        query: str,
        *,
        below: float | None = None,
        above: float | None = None,
        empty_ok: bool = False,
        timeout: float | str = DEFAULT_PROBE_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"probes.prometheus: {url!r} is not an http:// or https:// URL of a Prometheus server")
        if not isinstance(query, str) or not query.strip():
            raise ConfigError("probes.prometheus: query must be a non-empty PromQL expression")
        self.url = url.rstrip("/")
        self.query = query
        self.below = _finite(below, "below")
        self.above = _finite(above, "above")
        if self.below is not None and self.above is not None and self.above >= self.below:
            raise ConfigError(f"probes.prometheus: above={above} and below={below} leave no value that passes")
        self.empty_ok = empty_ok
        self.timeout = duration(timeout, "timeout")
        self.headers = dict(headers or {})
        self._parts = parts
        super().__init__(name or f"prometheus {query}", self._instant)

    # -- the rule ------------------------------------------------------------------

    def judge(self, values: list[float]) -> str | None:
        """None when ``values`` (the samples at one instant) pass, else why not."""
        if not values:
            return None if self.empty_ok else "no samples (the query returned an empty result)"
        for value in values:
            if self.below is not None and not value < self.below:
                return f"{value:g} is not below {self.below:g}"
            if self.above is not None and not value > self.above:
                return f"{value:g} is not above {self.above:g}"
            if self.below is None and self.above is None and (value == 0 or math.isnan(value)):
                return f"{value:g} (the condition is false)"
        return None

    # -- HTTP API ------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, str]) -> Any:
        import http.client as _http_client

        cls = _http_client.HTTPSConnection if self._parts.scheme == "https" else _http_client.HTTPConnection
        base = self._parts.path.rstrip("/")
        target = f"{base}{path}?{urllib.parse.urlencode(params)}"
        conn = cls(self._parts.hostname or "", self._parts.port, timeout=self.timeout)
        try:
            conn.request("GET", target, headers={"Accept": "application/json", "Connection": "close", **self.headers})
            response = conn.getresponse()
            body = response.read()
        except OSError as exc:
            raise PrometheusError(f"Prometheus at {self.url} unreachable: {exc}") from None
        finally:
            conn.close()
        try:
            data = json.loads(body)
        except ValueError:
            raise PrometheusError(f"Prometheus at {self.url} answered HTTP {response.status} without JSON") from None
        if response.status != 200 or data.get("status") != "success":
            reason = f"{data.get('errorType', '')} {data.get('error', '')}".strip()
            raise PrometheusError(f"Prometheus answered HTTP {response.status}: {reason}")
        return data["data"]

    def values_at(self, at: float | None = None) -> list[float]:
        """The samples of an instant query (now, or at ``at``)."""
        params = {"query": self.query}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        kind = data.get("resultType")
        if kind == "scalar":
            return [float(data["result"][1])]
        if kind == "vector":
            return [float(sample["value"][1]) for sample in data["result"]]
        raise PrometheusError(
            f"query {self.query!r} returns a {kind}, not an instant vector or scalar; "
            "wrap a range selector in a function such as rate() or max_over_time()"
        )

    def _instant(self) -> None:
        reason = self.judge(self.values_at())
        if reason is not None:
            raise ProbeFailed(reason)

    def series(self, start: float, end: float, step: float) -> dict[float, list[float]]:
        """A range query: the samples at each evaluation time (times with no sample are absent)."""
        data = self._get(
            "/api/v1/query_range",
            {"query": self.query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:.3f}"},
        )
        if data.get("resultType") == "scalar":  # not returned by query_range, but be tolerant
            return {float(data["result"][0]): [float(data["result"][1])]}
        points: dict[float, list[float]] = {}
        for series in data.get("result", []):
            for t, value in series.get("values", []):
                points.setdefault(round(float(t), 3), []).append(float(value))
        return points

    def wait_fresh(self, until: float, timeout: float) -> None:
        """Block until Prometheus has scraped at or after ``until`` (polled, bounded)."""
        newest: float | None = None

        def fresh() -> bool:
            nonlocal newest
            result = self._get("/api/v1/query", {"query": FRESH_QUERY}).get("result") or []
            newest = float(result[0]["value"][1]) if result else None
            return newest is not None and newest >= until

        if waiting.until(fresh, timeout, 0.05):  # Prometheus offers no event for a new scrape
            return
        raise PrometheusError(
            f"Prometheus at {self.url} has no scrape after {until:.3f} within {timeout:g}s "
            f"(newest {newest}); is it scraping?"
        )

    # -- evidence ------------------------------------------------------------------

    def import_range(
        self,
        experiment: Experiment,
        *,
        start: float | None = None,
        end: float | None = None,
        step: float | str = DEFAULT_STEP,
        before: float | str = 5.0,
        wait: float | str = 10.0,
    ) -> int:
        """Turn the query over ``[start, end]`` into operations on ``experiment``'s timeline.

        ``start`` defaults to ``before`` seconds ahead of the first fault (the baseline),
        ``end`` to now; Prometheus is first awaited (up to ``wait``) until it has scraped
        past ``end``. Each step is one operation at its evaluation time, ok or failed by the
        rule, ``source="prometheus:<name>"``. Returns the number of operations recorded.
        """
        seconds = duration(step, "step")
        if seconds <= 0:
            raise ConfigError("import_range: step must be > 0")
        if start is None:
            injected = [f.record.injected_at for f in experiment.faults if f.record is not None]
            if not injected:
                raise ConfigError("import_range: no fault injected yet; pass start= (epoch seconds)")
            start = min(injected) - duration(before, "before")
        end = time.time() if end is None else end
        start, seconds = round(start, 3), max(round(seconds, 3), 0.001)  # Prometheus times are milliseconds
        if end <= start:
            raise ConfigError(f"import_range: end {end:.3f} is not after start {start:.3f}")
        if (end - start) / seconds > MAX_POINTS:
            raise ConfigError(
                f"import_range: {end - start:.0f}s at step {seconds:g}s is more than {MAX_POINTS} points; "
                "use a larger step or a shorter range"
            )
        self.wait_fresh(end, duration(wait, "wait"))
        points = self.series(start, end, seconds)
        source = f"prometheus:{self.name}"
        count = 0
        for i in range(math.floor((end - start) / seconds + 1e-9) + 1):
            at = round(start + i * seconds, 3)
            reason = self.judge(points.get(at, []))
            experiment.record_operation(at, 0.0, reason is None, self.name, source=source, error=reason)
            count += 1
        return count


def prometheus(
    url: str,
    query: str,
    *,
    below: float | None = None,
    above: float | None = None,
    empty_ok: bool = False,
    timeout: float | str = DEFAULT_PROBE_TIMEOUT,
    headers: Mapping[str, str] | None = None,
    name: str | None = None,
) -> PrometheusProbe:
    """A probe that passes when the PromQL instant ``query`` at ``url`` meets the rule.

    ``below``/``above`` bound every sample; without them every sample must be non-zero.
    An empty result fails unless ``empty_ok``. ``headers`` (e.g. ``Authorization``) go with
    every request. ``sli.import_range(experiment)`` imports the same rule over a range.
    """
    return PrometheusProbe(
        url, query, below=below, above=above, empty_ok=empty_ok, timeout=timeout, headers=headers, name=name
    )
