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
        '  File "/usr/lib/python3/site-packages/chaoslib/secret.py:93: AttributeError',
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


# -- every shape, every output, serial and -n 2 (issue 21) -----------------------------------------

ENV_SECRET = "plantedSecretValue-0123456789abcd"  # 33 characters, as in the issue
URL_PW = "BobUrlPw77"
JSON_PW = "jsonEscPw42"
SPACE_TOKEN = "ghp_spaceTok0123456789"
SKIP_PW = "skipReasonPw1"
XFAIL_PW = "xfailReasonPw2"
WARN_PW = "warnPw3456"
TITLE_PW = "titlePw789x"
CTK_PW = "ctkProbePw55"
SHAPES = f'''
import json, os, warnings
import pytest

URL = "https://bob:{URL_PW}@db.example"

@pytest.mark.resiliency()
@pytest.mark.parametrize("dsn", [URL])
def test_id(dsn, experiment):
    pass

@pytest.mark.resiliency()
def test_skip(experiment):
    pytest.skip("no database at password={SKIP_PW}")

@pytest.mark.resiliency()
@pytest.mark.xfail(reason="flaky with token={XFAIL_PW}")
def test_xfail(experiment):
    assert False

@pytest.mark.resiliency()
@pytest.mark.xfail(reason="passes with token={XFAIL_PW}")
def test_xpass(experiment):
    pass

@pytest.mark.resiliency()
def test_warns(experiment):
    warnings.warn(UserWarning("retrying with password={WARN_PW}"))
    warnings.warn("retrying with " + URL)

@pytest.mark.resiliency()
def test_output(experiment):
    body = json.dumps(json.dumps({{"password": "{JSON_PW}", "user": "bob"}}))
    experiment.attach("logs:app", "response " + body)
    print("body", body, "auth token {SPACE_TOKEN}")
    print("key", os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
    from _pytest._io.saferepr import saferepr  # pytest's truncation, as in its assertion messages
    print("cut", saferepr("x" * 105 + os.environ["ORDERS_TOKEN"] + "y" * 105, maxsize=240))
    assert False, "the login failed"
'''
EXPERIMENT = {
    "version": "1.0.0",
    "title": f"Orders via https://bob:{TITLE_PW}@orders.example stay up",
    "description": "a title with a password in it",
    "method": [
        {
            "type": "probe",
            "name": "leaky",
            "provider": {
                "type": "python",
                "module": "json",
                "func": "dumps",
                "arguments": {"obj": {"password": CTK_PW}},
            },
        }
    ],
}


@pytest.mark.parametrize("xdist", [False, True], ids=["serial", "xdist"])
def test_every_shape_is_redacted_in_every_output(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: bool
) -> None:
    """Node ids, skip/xfail reasons, warnings, JSON-escaped pairs, a cut env secret, a bare secret
    access key after its id, ``token VALUE``, an experiment title and its CTK journal."""
    monkeypatch.setenv("ORDERS_TOKEN", ENV_SECRET)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAZZZZFAKE0000TEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    pytester.makepyfile(test_shapes=SHAPES)
    (pytester.path / "leaky.experiment.json").write_text(json.dumps(EXPERIMENT))
    args = ["-n", "2"] if xdist else ["-p", "no:xdist", "-v"]
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:benchmark", "-p", "no:hypothesispytest", *args, "-rA",
        "--html=report.html", "--self-contained-html", "--junitxml=junit.xml", "-o", "junit_logging=all",
        "--resiliency-json=journal.json", "--resiliency-summary-md=summary.md", timeout=180,
    )  # fmt: skip
    result.assert_outcomes(passed=3, failed=1, skipped=1, xfailed=1, xpassed=1, warnings=2)
    files = ("report.html", "junit.xml", "journal.json", "summary.md")
    outputs = {name: (pytester.path / name).read_text() for name in files}
    outputs["terminal"] = result.stdout.str() + result.stderr.str()
    planted = [URL_PW, JSON_PW, SPACE_TOKEN, SKIP_PW, XFAIL_PW, WARN_PW, TITLE_PW, CTK_PW, SECRET_KEY]
    planted += ["AKIAZZZZFAKE0000TEST"]
    planted += [ENV_SECRET[:8], ENV_SECRET[-8:]]  # the parts a repr cut leaves
    for name, text in outputs.items():
        leaked = [secret for secret in planted if secret in text]
        assert not leaked, f"{name} leaks {leaked}"
    terminal = outputs["terminal"]
    assert "test_id[https://bob:[redacted]@db.example]" in terminal  # the node id, scrubbed, not dropped
    assert "Orders via https://bob:[redacted]@orders.example stay up" in terminal
    assert "no database at password=[redacted]" in terminal and "flaky with token=[redacted]" in terminal
    assert "retrying with password=[redacted]" in terminal  # the warnings summary
    journal = json.loads(outputs["journal.json"])
    assert any("response" in json.dumps(t) and "[redacted]" in json.dumps(t) for t in journal["tests"])
