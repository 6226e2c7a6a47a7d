"""Allure integration: each resiliency test carries its budget and figures into Allure.

Active when allure-pytest is (``--alluredir``). In the process that runs the test, right
after the measurement (``pytest_resiliency_measured``, still inside the test's call phase,
where Allure's ``dynamic`` API targets this test), it adds:

* parameters: every budgeted NFR (``budget rto`` ...) and every measured figure (``RTO``,
  ``RTO uncertainty``, ``lost writes``, ``p99``, ``error rate``, ``verdict``). They are
  *excluded* from Allure's history id, so a test's history stays one line across runs
  whose figures (or budgets) change;
* attachments: the timeline chart (SVG), the NFR table (HTML) and, on a breach, the
  breach line (text);
* the tag ``resiliency``.
"""

from __future__ import annotations

from html import escape
from typing import Any

import pytest

from ..budget import format_duration
from .compare import uncertainty as stated_uncertainty

BUDGET_KEYS = ("rto", "rpo", "rpo_writes", "error_rate", "p99", "alert_within", "disruption", "tier")


def _duration(value: Any) -> str | None:
    return format_duration(value) if isinstance(value, (int, float)) else None


def parameters(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, value) pairs, budget first; figures that were not measured are left out."""
    s, b = payload["summary"], payload["budget"]
    pairs: list[tuple[str, str | None]] = []
    for key in BUDGET_KEYS:
        value = b.get(key)
        if value is None:
            continue
        if key in ("rto", "rpo", "p99", "alert_within"):
            text = _duration(value)
        elif key == "error_rate":
            text = f"{value:.2%}"
        else:
            text = str(value)
        pairs.append((f"budget {key}", text))
    uncertainty = stated_uncertainty(payload)
    rto = _duration(s.get("rto")) if s.get("rto") is not None else s.get("rto_status")
    pairs += [
        ("RTO", rto if s.get("rto_status") != "no fault" else None),
        ("RTO uncertainty", _duration(uncertainty)),
        ("RPO", _duration(s.get("rpo"))),
        ("lost writes", None if s.get("lost_writes") is None else str(s["lost_writes"])),
        ("error rate", None if s.get("error_rate") is None else f"{s['error_rate']:.2%}"),
        ("p99", _duration(s.get("p99"))),
        ("verdict", str(payload["outcome"]).upper()),
    ]
    return [(name, value) for name, value in pairs if value is not None]


def nfr_table(payload: dict[str, Any]) -> str:
    """The NFR table of the HTML report, as a small standalone HTML document."""
    from .html import STYLE, nfr_rows

    head = "".join(f"<th>{h}</th>" for h in ("NFR", "budget", "measured", "result", "note"))
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in nfr_rows(payload)
    )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8">{STYLE}</head><body><div class="resiliency">'
        f'<table class="rz"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div></body></html>'
    )


class AllureBridge:
    """Registered by the plugin when allure-pytest is active; reads only the payload."""

    @pytest.hookimpl
    def pytest_resiliency_measured(self, item: pytest.Item, experiment: Any, payload: dict[str, Any]) -> None:
        import allure

        from . import chart

        allure.dynamic.tag("resiliency")  # type: ignore[no-untyped-call]
        for name, value in parameters(payload):
            allure.dynamic.parameter(name, value, excluded=True)
        allure.attach(chart.render(payload), name="resiliency timeline", attachment_type=allure.attachment_type.SVG)
        allure.attach(nfr_table(payload), name="resiliency NFRs", attachment_type=allure.attachment_type.HTML)
        line = payload["verdict"].get("line")
        if line:
            allure.attach(line, name="resiliency breach", attachment_type=allure.attachment_type.TEXT)
