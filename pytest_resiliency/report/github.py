"""GitHub Actions annotations: a breached, aborted or errored experiment as ``::error``.

GitHub turns a ``::error file=F,line=L,title=T::message`` line on a step's standard
output into an annotation on that line of the pull request's diff and on the run's
summary page (workflow commands, "Setting an error message"). ``F`` is relative to the
repository root, ``$GITHUB_WORKSPACE``; ``L`` is 1-based. Evidence too sparse to trust
a recovery time becomes a ``::warning``. Expected breaches (``xfail``) are not
annotated: there is nothing to act on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .terminal import verdict_label

SETTINGS = ("auto", "always", "never")
TITLES = {"breach": "resiliency budget breached", "aborted": "resiliency experiment aborted"}


def enabled(setting: str, environ: Mapping[str, str]) -> bool:
    """``auto`` (the default) annotates only when GitHub Actions runs the job."""
    value = (setting or "auto").strip().lower()
    if value not in SETTINGS:
        raise ValueError(f"resiliency_github_annotations={setting!r}: expected one of {', '.join(SETTINGS)}")
    return value == "always" or (value == "auto" and environ.get("GITHUB_ACTIONS") == "true")


def escape_data(text: str) -> str:
    """The message part: ``%``, CR and LF are percent-encoded (a newline would end the command)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A ``key=value`` part: also ``:`` and ``,``, which separate the properties."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, message: str, *, file: str | None = None, line: int | None = None, title: str = "") -> str:
    props = []
    if file:
        props.append(f"file={escape_property(file)}")
        if line:
            props.append(f"line={line}")
    if title:
        props.append(f"title={escape_property(title)}")
    head = f"::{kind} {','.join(props)}" if props else f"::{kind}"
    return f"{head}::{escape_data(message)}"


def repo_path(location_path: str, rootdir: Path, workspace: str | None) -> str:
    """The test file relative to the repository root GitHub expects (``$GITHUB_WORKSPACE``).

    pytest reports paths relative to its rootdir, which may be a subdirectory of the
    repository; outside the workspace the rootdir-relative path is the best there is.
    """
    path = (rootdir / location_path).resolve()
    if workspace:
        try:
            return path.relative_to(Path(workspace).resolve()).as_posix()
        except ValueError:
            pass
    return Path(location_path).as_posix()


def commands(
    entries: list[dict[str, Any]],
    locations: Mapping[str, tuple[str, int | None]],
    rootdir: Path,
    workspace: str | None = None,
) -> list[str]:
    """One command per problem; ``locations`` maps node id to pytest's ``(path, 0-based line)``."""
    out = []
    for entry in sorted(entries, key=lambda e: e["nodeid"]):
        if entry.get("xfail"):
            continue
        nodeid = entry["nodeid"]
        path, lineno = locations.get(nodeid, (None, None))
        where: dict[str, Any] = {}
        if path:
            where = {"file": repo_path(path, rootdir, workspace), "line": lineno + 1 if lineno is not None else None}
        name = nodeid.rsplit("::", 1)[-1]
        outcome = entry["outcome"]
        if outcome != "pass":
            why = (
                entry["verdict"].get("line")
                or "; ".join(entry.get("errors") or [])
                or (f"aborted: {entry['aborted']}" if entry.get("aborted") else verdict_label(entry))
            )
            title = f"{TITLES.get(outcome, 'resiliency experiment error')}: {name}"
            out.append(command("error", f"{nodeid}: {why}", title=title, **where))
        note = entry["summary"].get("evidence_note")
        if note:
            out.append(
                command("warning", f"{nodeid}: {note}", title=f"resiliency evidence too sparse: {name}", **where)
            )
    return out


def workspace_from(environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    return env.get("GITHUB_WORKSPACE") or None
