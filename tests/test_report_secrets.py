"""Planted fake credentials never reach a report: html, JUnit, journal, scorecard, terminal (-n 2)."""

from __future__ import annotations

import pytest
from test_report_plugin import CONFTEST, QUIET

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


def test_scrubbing_a_long_word_is_not_quadratic() -> None:
    """A 50,000-character token-like word took minutes (every position restarted the scan)."""
    import time

    from pytest_resiliency.report.secrets import scrub_text

    word = "x" * 50_000
    began = time.perf_counter()
    assert scrub_text(word) == word
    assert time.perf_counter() - began < 5.0  # about 0.05 s now; the quadratic scan took minutes
    assert scrub_text(f"{word} password=hunter22") == f"{word} password=[redacted]"
