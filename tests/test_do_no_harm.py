"""Do no harm: a suite that uses none of the plugin behaves exactly as with ``-p no:resiliency``.

Each scenario runs a real pytest twice through ``pytester`` (in a subprocess, as an installed
plugin is loaded) — once as installed, once with the entry point blocked — and compares what
a user sees: outcomes, exit code, the collected node ids, ``--markers``, warnings, the text
of failure reports, the JUnit XML and how the process ends on SIGTERM (serial and under
xdist). The scenarios of issue 14 come first; the rest are the next ways a shared plugin
usually leaks into other suites (fixture names, option names, data files, report headers).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

# Other heavy auto-loaded plugins are off in the inner runs: they are the same on both sides
# and cost a second each (locust imports gevent). xdist is loaded where a scenario needs it.
LEAN = ["-p", "no:cacheprovider", "-p", "no:locust", "-p", "no:benchmark", "-p", "no:hypothesispytest"]
LEAN += ["-p", "no:html", "-p", "no:metadata", "-p", "no:allure_pytest"]
NO_XDIST = ["-p", "no:xdist"]
OFF = ["-p", "no:resiliency"]

# Lines that differ between any two runs, or name the loaded plugins: not behaviour.
_VOLATILE = re.compile(r"^(platform |rootdir: |plugins: |cachedir: |configfile: |created: |benchmark: )")
_TIMING = re.compile(r" in \d+(\.\d+)?s( \([0-9:]+\))?")


def normalised(output: str) -> list[str]:
    lines = [_TIMING.sub("", line).rstrip() for line in output.splitlines() if not _VOLATILE.match(line)]
    return [line for line in lines if line.strip("= ")]


class Pair:
    """The same command with the plugin (``on``) and without it (``off``)."""

    def __init__(self, on: pytest.RunResult, off: pytest.RunResult) -> None:
        self.on, self.off = on, off

    def assert_same(self) -> None:
        """Same exit code and the same terminal output, line for line (timings aside)."""
        assert self.on.ret == self.off.ret, (self.on.stdout.str(), self.off.stdout.str())
        assert normalised(self.on.stdout.str()) == normalised(self.off.stdout.str())


def both(pytester: pytest.Pytester, *args: str, timeout: float = 60) -> Pair:
    on = pytester.runpytest_subprocess(*LEAN, *args, timeout=timeout)
    off = pytester.runpytest_subprocess(*LEAN, *OFF, *args, timeout=timeout)
    return Pair(on, off)


# -- the four scenarios of issue 14 -------------------------------------------------------------


def test_unregistered_generic_marker_is_still_an_error_under_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_m="import pytest\n\n@pytest.mark.slow\ndef test_unregistered_marker():\n    pass\n")
    pair = both(pytester, *NO_XDIST, "-q", "--strict-markers")
    pair.assert_same()
    pair.on.assert_outcomes(errors=1)
    assert "'slow' not found in `markers` configuration option" in pair.on.stdout.str()
    # Not strict: the same "Unknown pytest.mark.slow" warning with and without the plugin.
    # (pytest 9.0 ignores ``addopts = --strict-markers`` in an ini file; this covers it too.)
    pytester.makeini("[pytest]\naddopts = --strict-markers\n")
    loose = both(pytester, *NO_XDIST, "-q")
    loose.assert_same()
    assert "PytestUnknownMarkWarning: Unknown pytest.mark.slow" in loose.on.stdout.str() or loose.on.ret != 0


@pytest.mark.parametrize("generic", ["aws", "local", "network", "destructive", "slow"])
def test_markers_lists_no_generic_marker_of_ours(pytester: pytest.Pytester, generic: str) -> None:
    """``--markers`` is the same apart from the two the plugin owns; a user's own ``slow`` is theirs."""
    pytester.makeini(f"[pytest]\nmarkers =\n    {generic}: the user's own meaning\n")
    pair = both(pytester, *NO_XDIST, "--markers")
    ours = re.compile(r"^@pytest\.mark\.(resiliency|ctk)\b")
    on = [line for line in normalised(pair.on.stdout.str()) if not ours.match(line)]
    assert on == normalised(pair.off.stdout.str())
    assert f"@pytest.mark.{generic}: the user's own meaning" in on
    pair.on.stdout.fnmatch_lines(["@pytest.mark.resiliency(*"])
    pair.on.stdout.fnmatch_lines(["@pytest.mark.ctk: *"])


def test_a_data_file_named_like_an_experiment_is_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.mkpydir("tests")
    (pytester.path / "tests" / "test_ok.py").write_text("def test_ok():\n    pass\n")
    configs = pytester.mkdir("tests/configs")
    (configs / "baseline.experiment.yaml").write_text("lr: 0.1\n")
    (configs / "sweep.experiment.yml").write_text("title: a sweep\nruns: [1, 2]\n")  # a title but no method
    (configs / "grid.experiment.json").write_text('[{"lr": 0.1}, {"lr": 0.01}]')
    (configs / "big.experiment.json").write_text('{"values": [' + ",".join(["1"] * 400_000) + "]}")
    (configs / "binary.experiment.json").write_bytes(b"\xff\xfe\x00garbage")
    pair = both(pytester, *NO_XDIST, "-q")
    pair.assert_same()
    pair.on.assert_outcomes(passed=1)
    collected = both(pytester, *NO_XDIST, "--co", "-q")
    collected.assert_same()


def test_sigterm_ends_a_serial_run_as_pytest_does(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_t="""
        import os, signal, time

        def test_default_disposition_during_a_plain_test():
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

        def test_terminated():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
        """
    )
    pair = both(pytester, *NO_XDIST, "-q")
    assert pair.on.ret == pair.off.ret == -signal.SIGTERM


def test_sigterm_to_an_xdist_worker_replaces_the_worker(pytester: pytest.Pytester) -> None:
    """The worker dies, xdist reports the crash and runs the rest: exit 1, not an interrupted session."""
    pytester.makepyfile(
        test_t="""
        import os, signal, time
        import pytest

        @pytest.mark.parametrize("i", range(6))
        def test_many(i):
            if i == 0:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)
        """
    )
    pair = both(pytester, "-n", "2", "-q", "-p", "xdist", timeout=120)
    assert pair.on.ret == pair.off.ret == pytest.ExitCode.TESTS_FAILED
    for result in (pair.on, pair.off):
        result.assert_outcomes(passed=5, failed=1)
        result.stdout.fnmatch_lines(["*worker 'gw*' crashed while running 'test_t.py::test_many[[]0[]]'*"])


def test_a_failing_plain_test_report_is_not_rewritten(pytester: pytest.Pytester) -> None:
    """Secrets are scrubbed from the plugin's reports; other tests' failures print as pytest made them."""
    pytester.makepyfile(
        test_f="""
        def test_fails():
            print("connecting with password=hunter2hunter2")
            assert "token=abc123def456" == "token=other"
        """
    )
    pair = both(pytester, *NO_XDIST, "-q", "--junitxml=junit.xml", "-o", "junit_logging=all")
    pair.assert_same()
    assert "password=hunter2hunter2" in pair.on.stdout.str()
    assert "[redacted]" not in pair.on.stdout.str()
    on = _junit(pytester, pair, plugin=True)
    off = _junit(pytester, pair, plugin=False)
    assert on == off
    assert "password=hunter2hunter2" in on


def _junit(pytester: pytest.Pytester, pair: Pair, plugin: bool) -> str:
    """The JUnit XML of one side (rerun: both sides wrote the same path), without timings."""
    args = [*LEAN, *NO_XDIST, "-q", "--junitxml=junit.xml", "-o", "junit_logging=all"]
    pytester.runpytest_subprocess(*args, *([] if plugin else OFF))
    root = ET.parse(pytester.path / "junit.xml").getroot()
    for element in root.iter():
        for volatile in ("time", "timestamp", "hostname"):
            element.attrib.pop(volatile, None)
    return ET.tostring(root, encoding="unicode")


def test_every_report_is_scrubbed_only_when_asked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_f="def test_fails():\n    assert 'password=hunter2hunter2' == ''\n")
    result = pytester.runpytest_subprocess(*LEAN, *NO_XDIST, "-q", "-o", "resiliency_scrub_all_reports=true")
    result.assert_outcomes(failed=1)
    assert "hunter2hunter2" not in result.stdout.str()
    assert "password=[redacted]" in result.stdout.str()


def test_a_resiliency_test_report_is_scrubbed_and_its_neighbour_is_not(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_f="""
        import pytest

        @pytest.mark.resiliency()
        def test_ours(experiment):
            assert "password=ours0123456" == ""

        def test_theirs():
            assert "password=theirs0123456" == ""

        def test_ours_dynamically(request):
            request.getfixturevalue("experiment")
            assert "password=dynamic0123456" == ""
        """
    )
    result = pytester.runpytest_subprocess(*LEAN, "-q", "-n", "2", "-p", "xdist")
    result.assert_outcomes(failed=3)
    out = result.stdout.str()
    assert "ours0123456" not in out and "password=[redacted]" in out
    assert "dynamic0123456" not in out
    assert "password=theirs0123456" in out


# -- more ways a shared plugin leaks into other suites ------------------------------------------


def test_users_own_fixtures_with_the_plugins_names_win(pytester: pytest.Pytester) -> None:
    """A suite may have its own ``experiment``, ``load``, ``service``... fixtures: theirs are used."""
    names = ["experiment", "load", "aws", "service", "proxy", "netns"]
    pytester.makeconftest(
        "import pytest\n\n" + "".join(f"@pytest.fixture\ndef {n}():\n    return '{n} of the user'\n\n" for n in names)
    )
    pytester.makepyfile(
        test_f="".join(
            f"def test_{n}({n}):\n    assert {n} == '{n} of the user'\n    assert 'password=x1234567' == ''\n\n"
            for n in names
        )
    )
    pair = both(pytester, *NO_XDIST, "-q")
    pair.assert_same()
    pair.on.assert_outcomes(failed=len(names))
    assert "[redacted]" not in pair.on.stdout.str()  # not our fixtures, so not our reports


def test_a_users_own_collector_of_experiment_yaml_keeps_its_files(pytester: pytest.Pytester) -> None:
    """A conftest that collects its own ``*.experiment.yaml`` (ML runs as tests) sees no second collector."""
    pytester.makeconftest(
        """
        import pytest

        class RunFile(pytest.File):
            def collect(self):
                yield RunItem.from_parent(self, name="run")

        class RunItem(pytest.Item):
            def runtest(self):
                assert "lr" in self.path.read_text()

        def pytest_collect_file(file_path, parent):
            if file_path.name.endswith(".experiment.yaml"):
                return RunFile.from_parent(parent, path=file_path)
        """
    )
    (pytester.path / "baseline.experiment.yaml").write_text("lr: 0.1\n")
    pair = both(pytester, *NO_XDIST, "-v")
    pair.assert_same()
    pair.on.assert_outcomes(passed=1)
    pair.on.stdout.fnmatch_lines(["baseline.experiment.yaml::run PASSED*"])


def test_collect_only_and_exit_codes_are_the_same(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a="""
        import pytest

        class TestThing:
            @pytest.mark.parametrize("x", [1, 2])
            def test_p(self, x):
                assert x

        def test_fail():
            assert False

        @pytest.mark.skip(reason="not today")
        def test_skip():
            pass

        @pytest.mark.xfail(strict=True)
        def test_xfail():
            assert False
        """
    )
    for args in (["--co", "-q"], ["--co"], ["-rA"], ["-x"], ["-m", "nothing_matches"], ["-k", "TestThing"]):
        both(pytester, *NO_XDIST, *args).assert_same()
    empty = pytester.mkdir("empty")
    pair = both(pytester, *NO_XDIST, str(empty))
    pair.assert_same()
    assert pair.on.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_warnings_and_filterwarnings_error_are_the_same(pytester: pytest.Pytester) -> None:
    """The plugin emits no warning of its own at start-up, collection or run time."""
    pytester.makeini("[pytest]\nfilterwarnings =\n    error\n    ignore:the user's own:UserWarning\n")
    pytester.makepyfile(
        test_w="""
        import warnings

        def test_warns():
            warnings.warn("the user's own", UserWarning)

        def test_quiet():
            pass
        """
    )
    pair = both(pytester, *NO_XDIST, "-q")
    pair.assert_same()
    pair.on.assert_outcomes(passed=2)
    for option in ("error", "default", "always"):  # the command line's filter wins over the ini's
        both(pytester, *NO_XDIST, "-q", "-W", option).assert_same()


def test_no_header_line_without_resiliency_tests_and_one_with(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    both(pytester, *NO_XDIST).assert_same()  # header, collection line, summary: all identical
    pytester.makepyfile(test_ours="import pytest\n\n@pytest.mark.resiliency()\ndef test_ours():\n    pass\n")
    result = pytester.runpytest_subprocess(*LEAN, *NO_XDIST)
    result.assert_outcomes(passed=2)
    lines = [line for line in result.stdout.lines if line.startswith("resiliency: ")]
    assert len(lines) == 1, result.stdout.str()
    assert "1 test, AWS moto" in lines[0] and "5 successes in a row and 1s without failure" in lines[0]
    assert f"undo log {os.environ.get('RESILIENCY_JOURNAL_DIR') or ''}" in lines[0]


def test_real_aws_mode_is_announced_before_anything_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess(*LEAN, *NO_XDIST, "--resiliency-aws=real", "--co")
    result.stdout.fnmatch_lines(["resiliency: AWS REAL: faults act on real resources*", "*collected 1 item*"])


def test_all_options_and_ini_names_are_in_the_plugins_namespace(pytester: pytest.Pytester) -> None:
    """No generic option a suite might define itself (``--aws``, ``--timeout``) comes from us."""
    on = pytester.runpytest_subprocess(*LEAN, *NO_XDIST, "--help").stdout.str()
    off = pytester.runpytest_subprocess(*LEAN, *NO_XDIST, *OFF, "--help").stdout.str()
    options = set(re.findall(r"^\s+(--[a-z][\w-]*)", on, re.MULTILINE)) - set(
        re.findall(r"^\s+(--[a-z][\w-]*)", off, re.MULTILINE)
    )
    ini = re.compile(r"^  ([a-z]\w*) \((?:string|bool|args|linelist|paths|int|float)\):", re.MULTILINE)
    inis = set(ini.findall(on)) - set(ini.findall(off))
    assert options and all(o.startswith("--resiliency-") for o in options), options
    assert inis and all(i.startswith("resiliency_") for i in inis), inis
    assert "resiliency_scrub_all_reports" in inis


def test_example_suite_markers_do_not_need_the_plugin() -> None:
    """The example suite registers its own selection markers: they are listed with the plugin off."""
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", *LEAN, *OFF, "--markers", "resiliency_tests"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for name in ("aws", "local", "network", "destructive", "slow"):
        assert f"@pytest.mark.{name}: " in out.stdout
    assert "@pytest.mark.resiliency(" not in out.stdout  # ...and the plugin really was off
