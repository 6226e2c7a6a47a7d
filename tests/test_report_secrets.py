"""Planted fake credentials never reach a report: html, JUnit, journal, scorecard, terminal (-n 2)."""

from __future__ import annotations

import json
import time

import pytest
from test_report_plugin import CONFTEST, QUIET

from pytest_resiliency.report.secrets import REDACTED, scrub_text

pytestmark = pytest.mark.slow

# Fake credentials, shaped like real ones so the patterns have to work for them.
SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAZZZZFAKE0000TEST",
    "AWS_SECRET_ACCESS_KEY": "fAkEsEcReTkEy/0123456789abcdefGHIJKLMNOP",
    "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2VjEFAKEFAKEFAKEsessiontoken0123456789",
    "ORDERS_DB_PASSWORD": "plantedDbPassw0rd",
}
URL_PASSWORD = "urlPassw0rdXYZ"
BEARER = "eyJfakebearertoken0123456789"
QUERY_TOKEN = "queryTok3n987654"


def test_planted_credentials_are_in_no_report(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_leaky=f"""
        import os
        import pytest
        from pytest_resiliency import faults, probes

        DSN = "http://orders:{URL_PASSWORD}@127.0.0.1:5432/db?token={QUERY_TOKEN}"

        @pytest.mark.resiliency(rto="100ms", recovery_window="200ms")
        def test_leaky_breach(server, experiment):
            experiment.monitor(probes.http(server.url), every="20ms")
            experiment.attach("logs:app", lambda: "\\n".join([
                "connecting to " + DSN,
                "env AWS_SECRET_ACCESS_KEY=" + os.environ["AWS_SECRET_ACCESS_KEY"],
                "key id " + os.environ["AWS_ACCESS_KEY_ID"],
                "headers {{'Authorization': 'Bearer {BEARER}'}}",
                "session " + os.environ["AWS_SESSION_TOKEN"],
            ]))
            experiment.attach("env", dict(os.environ))
            server.wait_some_successes()
            print("stdout leak", os.environ["ORDERS_DB_PASSWORD"], DSN)
            with faults.custom(server.break_, server.fix, name="break " + DSN, target=DSN,
                               password=os.environ["ORDERS_DB_PASSWORD"], dsn=DSN):
                server.wait_some_successes(server.served + 25)

        def test_plain_failure_with_secret_in_message():
            print("captured", os.environ["AWS_SECRET_ACCESS_KEY"])
            assert False, "could not log in with " + os.environ["ORDERS_DB_PASSWORD"] + " at " + DSN
        """
    )
    result = pytester.runpytest_subprocess(
        *QUIET,
        "-n",
        "2",
        "--html=report.html",
        "--self-contained-html",
        "--junitxml=junit.xml",
        "-o",
        "junit_logging=all",
        "--resiliency-json=journal.json",
        "--resiliency-summary-md=summary.md",
        # The plain test's report is scrubbed only on request (do no harm); the resiliency test's always.
        "-o",
        "resiliency_scrub_all_reports=true",
    )
    result.assert_outcomes(failed=2)
    planted = [*SECRETS.values(), URL_PASSWORD, BEARER, QUERY_TOKEN]
    outputs = {
        name: (pytester.path / name).read_text(encoding="utf-8")
        for name in ("report.html", "junit.xml", "journal.json", "summary.md")
    }
    outputs["terminal"] = result.stdout.str()
    for name, text in outputs.items():
        leaked = [secret for secret in planted if secret in text]
        assert not leaked, f"{name} leaks {leaked}"
    # ...and the evidence is still there, with the secrets cut out
    assert (
        "[redacted]" in outputs["journal.json"] and "connecting to http://orders:[redacted]@" in outputs["journal.json"]
    )
    assert "could not log in with [redacted]" in outputs["junit.xml"]
    assert "captured [redacted]" in outputs["junit.xml"]  # captured output, scrubbed, not dropped
    assert "stdout leak [redacted]" in outputs["report.html"]
    assert "test_leaky_breach" in outputs["summary.md"]


SECRET_KEY = "fAkEsEcReTkEy/0123456789abcdefGHIJKLMNOP"  # 40 characters, like an AWS secret access key


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        # JSON inside JSON (a response body in a log line, a journal of a journal): escaped quotes
        (json.dumps({"body": json.dumps({"password": "hunter22x", "user": "bob"})}), "hunter22x"),
        (json.dumps(json.dumps({"api_key": "k-123456789"})), "k-123456789"),
        # a bare secret access key right after its key id (CSV credential files, "id secret" logs)
        (f"AKIAZZZZFAKE0000TEST {SECRET_KEY}", SECRET_KEY),
        (f"User,AKIAZZZZFAKE0000TEST,{SECRET_KEY}", SECRET_KEY),
        # the word, a space, a value that looks made
        ("login with token ghp_0123456789abcdefghij done", "ghp_0123456789abcdefghij"),
        ("password hunter22x", "hunter22x"),
        ("Cookie: session=abc123; theme=dark", "abc123"),
    ],
)
def test_every_shape_the_issue_lists_is_redacted(text: str, leaked: str) -> None:
    clean = scrub_text(text, [])
    assert leaked not in clean and REDACTED in clean, clean
    assert scrub_text(clean, []) == clean


def test_a_known_secret_cut_by_pytests_repr_truncation_is_redacted_on_both_sides() -> None:
    """saferepr keeps the head and the tail of a long string: 31 of 33 characters showed."""
    from _pytest._io.saferepr import saferepr

    secret = "plantedSecretValue-0123456789abcd"  # 33 characters, as in the issue
    shown = saferepr({"env": "x" * 100 + secret + "y" * 100, "other": 1}, maxsize=240)
    assert "..." in shown and secret not in shown
    cut = saferepr("a" * 105 + secret + "b" * 105, maxsize=240)  # the cut falls inside the secret
    head, tail = cut.split("...")
    assert secret[:8] in head and secret[-8:] in tail  # both parts of the secret show
    clean = scrub_text(cut, [secret])
    assert secret[:8] not in clean and secret[-8:] not in clean, clean
    assert clean.startswith("'aaaa") and clean.endswith("bbbb'")  # the rest is still there


@pytest.mark.parametrize(
    "text",
    [
        "  File \"/usr/lib/python3/site-packages/chaoslib/secret.py:93: AttributeError",
        "the token expired; monkey: banana; sort_key=name; keyboard: us",
        "password reset requested",
    ],
)
def test_ordinary_text_that_looks_close_is_kept(text: str) -> None:
    assert scrub_text(text, []) == text


def _scrub_cpu(text: str) -> float:
    """Fewest CPU seconds of three scrubs (CPU time: the machine is shared)."""
    best = float("inf")
    for _ in range(3):
        began = time.process_time()
        scrub_text(text, [SECRET_KEY])
        best = min(best, time.process_time() - began)
    return best


@pytest.mark.parametrize(
    "unit",
    ["x", "aZ09-_", "password_token_secret_", 'api_key:"\n', "token 1234567 ", "http://user:", ".", "A", 'password:"'],
)
def test_scrubbing_grows_linearly(unit: str) -> None:
    """4 MB takes about 4 times the work of 1 MB (quadratic would be 16): no input makes it super-linear.

    The old scrubber took minutes for one 50,000-character word. Figures: benchmarks/bench_scrub.py.
    """
    one = (unit * (250_000 // len(unit) + 1))[:250_000]
    four = one * 4
    assert _scrub_cpu(four) < 8 * _scrub_cpu(one) + 0.01
    assert scrub_text(f"{'x' * 50_000} password=hunter22", []) == f"{'x' * 50_000} password=[redacted]"
