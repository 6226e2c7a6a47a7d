"""The plugin end to end, through pytester: markers, verdicts, outputs, serial and ``-n 2``."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from junit_figures import case_figures

# A loopback HTTP server whose outage is controlled by the test (the ground truth).
SERVER_CONFTEST = """
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Server(ThreadingHTTPServer):
    daemon_threads = True
    broken = False

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_port}/"

    def break_(self):
        self.broken = True

    def fix(self):
        self.broken = False


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(503 if self.server.broken else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def wait_successes(experiment, count=5, timeout=5.0):
    deadline = time.time() + timeout
    while experiment.timeline.recovery_state().successes < count:
        assert time.time() < deadline, "the probe never succeeded"
        time.sleep(0.01)
"""

OUTAGE_TESTS = """
import time
import pytest
from pytest_resiliency import faults, probes
from conftest import wait_successes


@pytest.mark.parametrize("outage", [1.5, 0.5])
@pytest.mark.resiliency(rto="1s")
def test_outage(server, experiment, outage):
    experiment.monitor(probes.http(server.url), every="20ms")
    wait_successes(experiment)
    with faults.custom(server.break_, server.fix, name="http 503"):
        time.sleep(outage)
"""


def load_journal(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.fixture
def outage_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("COLUMNS", "120")  # the summary's default width: node ids are not shortened
    pytester.makeconftest(SERVER_CONFTEST)
    pytester.makepyfile(test_outage=OUTAGE_TESTS)
    return pytester


def assert_outage_results(journal: dict[str, Any]) -> None:
    assert journal["schema"] == "pytest-resiliency/journal"
    assert journal["version"] == 2
    by_id = {t["nodeid"]: t for t in journal["tests"]}
    assert list(by_id) == sorted(by_id)
    slow, fast = by_id["test_outage.py::test_outage[1.5]"], by_id["test_outage.py::test_outage[0.5]"]
    assert (slow["outcome"], slow["pytest_outcome"]) == ("breach", "failed")
    assert (fast["outcome"], fast["pytest_outcome"]) == ("pass", "passed")
    for entry in (slow, fast):
        (fault,) = entry["faults"]
        truth = fault["reverted_at"] - fault["injected_at"]
        measured = entry["summary"]["rto"]
        # The upper end never undershoots; it overshoots by up to a 20 ms monitor period plus the
        # probe's own answer time and scheduling (dated at completions: up to two periods here).
        assert truth <= measured <= truth + 0.060, (measured, truth)
        (episode,) = entry["measurement"]["episodes"]
        assert episode["recovery_from"] <= fault["reverted_at"] <= episode["t_recovered"]
        assert 0.0 < entry["summary"]["rto_uncertainty"] <= 0.060
    assert slow["verdict"]["breaches"][0]["nfr"] == "rto"


def test_rto_breach_fails_with_one_line_and_a_short_outage_passes(outage_suite: pytest.Pytester) -> None:
    result = outage_suite.runpytest("--resiliency-json=journal.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.re_match_lines(
        [
            r"RTO 1\.5\ds \(±[\d.]+ms\) > budget 1\.00s \(first failure \+[\d.]+ms, last seen down \+1\.\d+s, "
            r"recovered by \+1\.5\ds, \d+ failed operations\)"
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*= resiliency summary =*",
            "test*RTO*RPO*error rate*p99*verdict",
            "test_outage.py::test_outage[[]0.5]*/ 1.00s*PASS",
            "test_outage.py::test_outage[[]1.5]*/ 1.00s*BREACH",
            "resiliency journal: *journal.json",
        ]
    )
    assert_outage_results(load_journal(outage_suite.path / "journal.json"))


def test_same_verdicts_under_xdist_with_junit_properties(outage_suite: pytest.Pytester) -> None:
    result = outage_suite.runpytest_subprocess(
        "-n", "2", "-p", "no:cacheprovider", "--resiliency-json=journal.json", "--junitxml=junit.xml"
    )
    result.assert_outcomes(passed=1, failed=1)
    assert_outage_results(load_journal(outage_suite.path / "journal.json"))
    root = ET.parse(outage_suite.path / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None
    suite_props = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert suite_props["resiliency.tests"] == "2"
    assert suite_props["resiliency.breaches"] == "1"
    assert float(suite_props["resiliency.worst_rto_s"] or 0) > 1.4
    cases = suite.findall("testcase")
    assert len(cases) == 2
    for case in cases:
        props = case_figures(case)  # xunit2 (the default): [[PROPERTY|...]] lines in <system-out>
        assert props["resiliency.rto_budget_s"] == "1"
        assert float(props["resiliency.rto_s"] or 0) > 0.4
        assert props["resiliency.status"] == "recovered"
    failure = root.find(".//testcase[@name='test_outage[1.5]']/failure")
    assert failure is not None
    assert (failure.get("message") or "").startswith("Failed: RTO 1.5")


BAD_MARKERS = """
import pytest

@pytest.mark.resiliency(rto="abc")
def test_bad_duration():
    pass

@pytest.mark.resiliency("5s")
def test_positional():
    pass

@pytest.mark.resiliency(rto="5s", budget=3)
def test_unknown():
    pass

@pytest.mark.resiliency(error_rate=-0.1)
def test_negative():
    pass
"""

BAD_MARKER_LINES = [
    "*test_bad.py::test_bad_duration: @pytest.mark.resiliency: rto='abc' is not a duration; use a number of seconds "
    "or a string like '250ms', '30s', '5m', '1h'",
    "*test_bad.py::test_positional: @pytest.mark.resiliency: positional arguments ('5s',) are not accepted*",
    "*test_bad.py::test_unknown: @pytest.mark.resiliency: unknown argument budget; accepted: rto, *",
    "*test_bad.py::test_negative: @pytest.mark.resiliency: error_rate=-0.1 must be a fraction between 0 and 1*",
]


def test_bad_marker_arguments_are_a_usage_error_naming_test_argument_and_accepted(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bad=BAD_MARKERS)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: invalid resiliency marker:", *BAD_MARKER_LINES])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_bad_marker_arguments_under_xdist_error_each_test_without_traceback(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bad=BAD_MARKERS)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines([f"*invalid resiliency marker: {line.lstrip('*')}" for line in BAD_MARKER_LINES[:1]])
    assert "Traceback" not in result.stdout.str()
    assert "INTERNALERROR" not in result.stdout.str()


def test_the_plugin_registers_only_its_own_markers(pytester: pytest.Pytester) -> None:
    """``resiliency`` and ``ctk`` are ours; selection markers belong to the suites that use them."""
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.resiliency(rto=..., rpo=..., *"])
    result.stdout.fnmatch_lines(["@pytest.mark.ctk: *"])
    for generic in ("aws", "local", "network", "destructive", "slow"):
        assert f"@pytest.mark.{generic}:" not in result.stdout.str()


def test_the_example_suite_registers_its_selection_markers(pytester: pytest.Pytester) -> None:
    """``pytest -m "resiliency and not aws"`` keeps working under the repository's --strict-markers."""
    repo = Path(__file__).resolve().parents[1]
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--rootdir={repo}", "-c", str(repo / "pytest.ini"), "--markers",
        str(repo / "resiliency_tests"),
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    for name in ("aws", "local", "network", "destructive", "slow"):
        result.stdout.fnmatch_lines([f"@pytest.mark.{name}: *"])


PRECEDENCE = """
import json
import pytest

@pytest.mark.resiliency(recovery_successes=7)
def test_marker(experiment):
    print("CRITERIA", json.dumps(experiment.criteria.as_dict()))

@pytest.mark.resiliency(rto="1s")
def test_default(experiment):
    print("CRITERIA", json.dumps(experiment.criteria.as_dict()))
"""


def criteria_lines(result: pytest.RunResult) -> list[dict[str, Any]]:
    return [json.loads(line.split("CRITERIA ", 1)[1]) for line in result.outlines if "CRITERIA {" in line]


def test_precedence_marker_over_cli_over_ini(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_prec=PRECEDENCE)
    pytester.makeini(
        """
        [pytest]
        resiliency_recovery_successes = 3
        resiliency_recovery_window = 2s
        resiliency_recovery_timeout = 45s
        """
    )
    # The tests have no fault, so an rto budget breaches ("no fault"): only the criteria matter here.
    ini_only = criteria_lines(pytester.runpytest("-s"))
    assert ini_only == [
        {"successes": 7, "window": 2.0, "timeout": 45.0},
        {"successes": 3, "window": 2.0, "timeout": 45.0},
    ]
    cli = criteria_lines(
        pytester.runpytest("-s", "--resiliency-recovery-successes=4", "--resiliency-recovery-timeout=10s")
    )
    assert cli == [
        {"successes": 7, "window": 2.0, "timeout": 10.0},
        {"successes": 4, "window": 2.0, "timeout": 10.0},
    ]


def test_old_timeout_spellings_still_work_with_a_deprecation_warning(pytester: pytest.Pytester) -> None:
    """``timeout`` collides with pytest-timeout: the marker keyword, option and ini are ``recovery_timeout``
    now; the old spellings keep working and say which name replaced them."""
    pytester.makepyfile(
        test_old="""
        import json
        import pytest

        @pytest.mark.resiliency(timeout="12s")
        def test_marker(experiment):
            print("CRITERIA", json.dumps(experiment.criteria.as_dict()))

        @pytest.mark.resiliency(rto="1s")
        def test_option(experiment):
            print("CRITERIA", json.dumps(experiment.criteria.as_dict()))
        """
    )
    result = pytester.runpytest("-s", "--resiliency-timeout=20s")
    assert criteria_lines(result) == [
        {"successes": 5, "window": 1.0, "timeout": 12.0},
        {"successes": 5, "window": 1.0, "timeout": 20.0},
    ]
    result.stdout.fnmatch_lines(
        [
            "*DeprecationWarning: pytest-resiliency: --resiliency-timeout / ini resiliency_timeout is deprecated; "
            "use --resiliency-recovery-timeout*",
            "*DeprecationWarning: test_old.py::test_marker: @pytest.mark.resiliency(timeout=...) is deprecated: "
            "use recovery_timeout=*",
        ],
        consecutive=False,
    )
    both = pytester.makepyfile(
        test_both="""
        import pytest

        @pytest.mark.resiliency(timeout="12s", recovery_timeout="5s")
        def test_both(experiment):
            pass
        """
    )
    result = pytester.runpytest(both)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*timeout= and recovery_timeout= name the same thing; use recovery_timeout= only*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resiliency-recovery-window=soon"], "recovery_window='soon' is not a duration"),
        (["--resiliency-recovery-successes=0"], "recovery_successes='0' must be a whole number >= 1"),
        (["-o", "resiliency_recovery_timeout=-5s"], "recovery_timeout='-5s' is not a duration"),
        (["-o", "resiliency_timeout=-5s"], "recovery_timeout='-5s' is not a duration"),
    ],
)
def test_bad_options_are_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*pytest-resiliency option: {message}*"])


def test_xfail_skip_and_body_errors(outage_suite: pytest.Pytester) -> None:
    outage_suite.makepyfile(
        test_more="""
        import time
        import pytest
        from pytest_resiliency import faults, probes
        from conftest import wait_successes

        REVERTED = []

        @pytest.mark.xfail(reason="budget too tight on purpose", strict=True)
        @pytest.mark.resiliency(rto="100ms")
        def test_breach_is_xfail(server, experiment):
            experiment.monitor(probes.http(server.url), every="20ms")
            wait_successes(experiment)
            with faults.custom(server.break_, server.fix, name="outage"):
                time.sleep(0.4)

        @pytest.mark.resiliency(rto="5s")
        def test_skip_inside_a_fault(server, experiment):
            with faults.custom(server.break_, lambda: REVERTED.append("skip"), name="outage"):
                pytest.skip("not today")

        @pytest.mark.resiliency(rto="5s")
        def test_error_inside_a_fault(server, experiment):
            with faults.custom(server.break_, lambda: REVERTED.append("error"), name="outage"):
                raise RuntimeError("the body broke")

        def test_reverted():
            assert REVERTED == ["skip", "error"]
        """
    )
    result = outage_suite.runpytest("test_more.py", "--resiliency-json=j.json")
    result.assert_outcomes(xfailed=1, skipped=1, failed=1, passed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: the body broke*"])
    entries = {t["nodeid"].split("::")[1]: t for t in load_journal(outage_suite.path / "j.json")["tests"]}
    assert entries["test_breach_is_xfail"]["outcome"] == "breach"
    assert entries["test_breach_is_xfail"]["xfail"] is True
    assert entries["test_error_inside_a_fault"]["outcome"] == "error"
    assert entries["test_error_inside_a_fault"]["faults"][0]["reverted_at"] is not None


def test_pytest_timeout_inside_a_fault_still_reverts(pytester: pytest.Pytester) -> None:
    marker = pytester.path / "reverted"
    pytester.makepyfile(
        f"""
        import time
        import pytest
        from pytest_resiliency import faults

        @pytest.mark.timeout(1, method="signal")
        @pytest.mark.resiliency(rto="5s")
        def test_hangs(experiment):
            with faults.custom(lambda: None, lambda: open({str(marker)!r}, "w").close(), name="hang"):
                time.sleep(30)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Timeout*"])
    assert marker.exists()


def test_stop_condition_aborts_as_error_and_reverts(outage_suite: pytest.Pytester) -> None:
    outage_suite.makepyfile(
        test_stop="""
        import time
        import pytest
        from pytest_resiliency import faults, probes
        from conftest import wait_successes

        @pytest.mark.resiliency(rto="30s")
        def test_abort(server, experiment):
            experiment.monitor(probes.http(server.url), every="20ms")
            wait_successes(experiment)
            experiment.stop_when(lambda: experiment.timeline.recovery_state().successes == 0 and len(
                [f for f in experiment.timeline.snapshot().op_ok if not f]) > 10, every="20ms", name="too many errors")
            fault = faults.custom(server.break_, server.fix, name="outage")
            with fault:
                deadline = time.time() + 10
                while fault.active and time.time() < deadline:
                    time.sleep(0.01)
            assert not fault.active
        """
    )
    result = outage_suite.runpytest("test_stop.py", "--resiliency-json=j.json")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_abort*", "*aborted: stop condition 'too many errors' tripped*"]
    )
    (entry,) = load_journal(outage_suite.path / "j.json")["tests"]
    assert entry["outcome"] == "aborted"
    assert entry["pytest_outcome"] == "error"
    assert entry["faults"][0]["reverted_at"] is not None
    assert any(m["kind"] == "aborted" for m in entry["marks"])


def test_no_fault_and_no_evidence_are_breaches_that_say_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_resiliency import faults

        @pytest.mark.resiliency(rto="1s")
        def test_no_fault(experiment):
            pass

        @pytest.mark.resiliency(rto="1s", recovery_window="10ms")
        def test_no_evidence():
            with faults.custom(lambda: None, lambda: None, name="blind"):
                pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*RTO not measured: no fault was injected (budget 1.00s)",
            "*RTO unknown: no evidence after the fault (blind): no operation was observed*",
        ]
    )


def test_hooks_see_faults_measurements_and_breaches(outage_suite: pytest.Pytester) -> None:
    outage_suite.makeconftest(
        SERVER_CONFTEST
        + """
EVENTS = []

def pytest_resiliency_fault_injected(fault, experiment):
    EVENTS.append(("injected", fault.name))

def pytest_resiliency_fault_reverted(fault, experiment):
    EVENTS.append(("reverted", fault.name))

def pytest_resiliency_measured(item, experiment, payload):
    EVENTS.append(("measured", payload["outcome"]))

def pytest_resiliency_breached(item, experiment, payload):
    EVENTS.append(("breached", payload["verdict"]["breaches"][0]["nfr"]))

def pytest_resiliency_result(report, payload):
    EVENTS.append(("result", report.nodeid.split("::")[1]))

def pytest_sessionfinish(session):
    print("EVENTS", EVENTS)
"""
    )
    result = outage_suite.runpytest("-s", "-k", "1.5")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "*EVENTS [[]('injected', 'http 503'), ('reverted', 'http 503'), ('measured', 'breach'), "
            "('breached', 'rto'), ('result', 'test_outage[[]1.5]')]*"
        ]
    )


def test_verify_writes_with_either_reader_form(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time
        import pytest
        from pytest_resiliency import faults

        STORE = set()

        def write(experiment, key, lose=False):
            start = time.time()
            if not lose:
                STORE.add(key)
            experiment.record_write(key, start, time.time(), "ok")

        @pytest.mark.resiliency(rpo=0, rpo_writes=0)
        def test_lossless(experiment):
            for i in range(5):
                write(experiment, f"a{i}")
            with faults.custom(lambda: None, lambda: None):
                pass
            ledger = experiment.verify_writes(lambda keys: [k for k in keys if k in STORE])
            assert ledger.lost == 0 and ledger.acknowledged == 5

        @pytest.mark.resiliency(rpo_writes=1)
        def test_lossy(experiment):
            write(experiment, "b0", lose=True)
            write(experiment, "b1", lose=True)
            with faults.custom(lambda: None, lambda: None):
                pass
            experiment.verify_writes(lambda: STORE)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*RPO 2 writes lost > budget 1"])


def test_watchdog_reverts_a_fault_after_its_max_duration(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading
        import time
        from pytest_resiliency import faults

        def test_expiry(experiment):
            reverted = threading.Event()
            fault = faults.custom(lambda: None, reverted.set, name="short", max_duration="100ms")
            fault.inject()
            assert reverted.wait(5)
            deadline = time.monotonic() + 5
            while fault.active and time.monotonic() < deadline:  # the revert time is recorded after the undo
                time.sleep(0.005)
            assert not fault.active and fault.expired
            assert [m.kind for m in experiment.timeline.snapshot().marks] == ["fault-expired"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_failed_injection_is_rolled_back_and_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_resiliency import faults
        from pytest_resiliency.errors import ConfigError

        UNDONE = []

        def half_inject():
            raise OSError("permission denied")

        def test_inject_fails(experiment):
            fault = faults.custom(half_inject, lambda: UNDONE.append(1), name="half")
            with pytest.raises(OSError, match="permission denied"):
                fault.inject()
            assert UNDONE == [1]
            assert not fault.active
            assert experiment.faults == []

        def test_custom_needs_callables():
            with pytest.raises(ConfigError, match=r"faults.custom needs two callables \\(inject, revert\\)"):
                faults.custom("break", None)
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_plugin_import_stays_light() -> None:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import pytest_resiliency.plugin"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    heavy = {m for m in imported if m.split(".")[0] in {"boto3", "botocore", "moto", "locust", "gevent"}}
    assert not heavy, sorted(heavy)
    assert "pytest_resiliency.plugin" in imported


def test_plugin_constants_mirror_the_modules_it_does_not_import_at_start_up() -> None:
    from pytest_resiliency import budget, timeline
    from pytest_resiliency import fault_fixtures as fixtures
    from pytest_resiliency import settings as plugin
    from pytest_resiliency.faults import journal

    assert plugin.DEFAULT_MAX_OPERATIONS == timeline.DEFAULT_MAX_OPERATIONS
    assert plugin.MARKER_ARGUMENTS == budget.MARKER_ARGUMENTS
    assert (plugin.DEFAULT_RECOVERY_SUCCESSES, plugin.DEFAULT_RECOVERY_WINDOW, plugin.DEFAULT_TIMEOUT) == (
        budget.DEFAULT_RECOVERY_SUCCESSES,
        budget.DEFAULT_RECOVERY_WINDOW,
        budget.DEFAULT_TIMEOUT,
    )
    assert fixtures.JOURNAL_ENV == journal.ENV_DIR
    assert plugin.journal_path() == journal.journal_dir()


def test_start_up_imports_only_the_registration_modules() -> None:
    """A run without resiliency tests imports nothing of the package beyond what registers hooks."""
    code = (  # --noconftest: the plugin's own imports, not those of this suite's conftest.py
        "import sys, pytest; pytest.main(['-q', '-p', 'no:cacheprovider', '--noconftest', '--co', sys.argv[1]]); "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('pytest_resiliency'))))"
    )
    empty = Path(__file__).parent / "load_servers.py"  # any module without tests
    out = subprocess.run([sys.executable, "-c", code, str(empty)], capture_output=True, text=True, check=False)
    loaded = set(out.stdout.split("\n")[-2].split())
    assert loaded == {
        "pytest_resiliency",
        "pytest_resiliency.plugin",
        "pytest_resiliency.settings",  # recovery criteria from CLI/ini, the header line
        "pytest_resiliency.hookspecs",
        "pytest_resiliency.context",  # the running test's experiment and AWS session (standard library only)
        "pytest_resiliency.targets",
        "pytest_resiliency.targets.fixtures",
        "pytest_resiliency.fault_fixtures",  # proxy, netns, --resiliency-recover (outside the faults package)
        "pytest_resiliency.load",
        "pytest_resiliency.load.fixtures",
        "pytest_resiliency.aws",
        "pytest_resiliency.aws.fixtures",
        "pytest_resiliency.ctk",
        "pytest_resiliency.ctk.collect",
        "pytest_resiliency.ctk.flags",  # the --resiliency-ctk-* options
        "pytest_resiliency.ctk.strategies",  # their accepted values, for --help
        "pytest_resiliency.report",
        "pytest_resiliency.report.collector",
        "pytest_resiliency.report.options",  # the report ini options, checked at start-up
        "pytest_resiliency.report.integrations",  # --resiliency-compare, Allure, OpenTelemetry options
    }, out.stdout + out.stderr


def test_writes_acknowledged_after_the_read_back_are_not_lost(pytester: pytest.Pytester) -> None:
    """Load still running after verify_writes: later writes were never read back, so not lost."""
    pytester.makepyfile(
        """
        import time
        import pytest
        from pytest_resiliency import faults

        @pytest.mark.resiliency(rpo=0)
        def test_late_writes(experiment):
            experiment.record_write("early", time.time(), time.time(), "ok")
            with faults.custom(lambda: None, lambda: None):
                pass
            ledger = experiment.verify_writes(lambda keys: ["early"])
            experiment.record_write("late", time.time(), time.time(), "ok")
            assert experiment.measure().ledger == ledger
            assert ledger.written == 1 and ledger.lost == 0
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
