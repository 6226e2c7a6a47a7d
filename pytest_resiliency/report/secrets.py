"""Scrub secrets (AWS keys, tokens, passwords in URLs, Authorization headers) from anything reported.

Reports end up in CI artifacts and job summaries that many people can read, and the
evidence they carry (service logs, fault parameters, error texts, probe URLs) is exactly
where credentials leak. :func:`scrub` is applied to every payload, and the collector
applies :func:`scrub_text` to failure texts and captured output before any reporter
sees them. Which reports: those the plugin is responsible for (resiliency tests, experiment
files, its own outputs); every report only with the ini option ``resiliency_scrub_all_reports``
(do no harm: other tests' reports stay exactly as pytest made them). Three nets, because no
single one catches everything:

* patterns: AWS access key ids (``AKIA…``/``ASIA…``), AWS session tokens, ``user:pass@``
  in URLs, ``Authorization:`` headers, ``password=``/``token=``/``secret=``-like pairs
  (query parameters, ``KEY=value`` lines, JSON and Python reprs);
* names: a dict value whose key looks secret (``password``, ``AWS_SECRET_ACCESS_KEY``...);
* values: the literal value of every environment variable whose name looks secret, so a
  secret that was printed in an unusual shape is still caught.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"
# Env vars and dict keys with these words in their name hold secrets.
_SECRET_WORDS = (
    r"secret|passw(?:or)?d|passphrase|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?"
    r"|authorization|cookie|signature"
)
_SECRET_NAME = re.compile(rf"(?i)({_SECRET_WORDS})")
_MIN_ENV_SECRET = 8  # shorter values ("1", "true", "enabled") would redact half the report

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host -> scheme://user:[redacted]@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s/@:\"'<>]*):([^\s/@\"'<>]+)@"), rf"\1:{REDACTED}@"),
    # Authorization: Bearer xyz / "Authorization": "AWS4-HMAC-SHA256 Credential=..." (to the end of the value)
    (
        re.compile(
            r"(?i)\b((?:proxy-)?authorization|x-api-key|x-amz-security-token|cookie)(\"?'?\s*[:=]\s*\"?'?)(?![\s\"']*\[redacted\])([^\r\n\"']+)"
        ),
        rf"\1\2{REDACTED}",
    ),
    # password=..., ?token=..., AWS_SECRET_ACCESS_KEY=..., "api_key": "..." (a match starts only where
    # a name can start: without the look-behind every position of a long word restarts the scan)
    (
        re.compile(
            rf"(?i)(?<![A-Za-z0-9_.\-])([A-Za-z0-9_.\-]*(?:{_SECRET_WORDS})[A-Za-z0-9_.\-]*)(\"?'?\s*[:=]\s*\"?'?)(?![\s\"']*\[redacted\])((?<=[\"'])[^\"'\r\n]+|[^\s\"'&,;<>)}}\]]+)"
        ),
        rf"\1\2{REDACTED}",
    ),
    # AWS access key ids: long-term (AKIA) and temporary (ASIA) and the other principal prefixes
    (re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z0-9]{16}\b"), REDACTED),
    # AWS session tokens (base64 of a protobuf that starts the same way every time)
    (re.compile(r"\b(?:FwoGZXIvYXdz|FQoGZXIvYXdz|IQoJb3JpZ2lu|IQoJb3Jp|AgoJb3JpZ2lu)[A-Za-z0-9+/=]{16,}"), REDACTED),
)


@functools.lru_cache(maxsize=4096)
def secret_name(name: str) -> bool:
    """Whether a key or variable name says its value is a secret (cached: every report asks again)."""
    return bool(_SECRET_NAME.search(name))


def env_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-looking environment variables, longest first (so overlaps redact fully)."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if secret_name(k) and _secret_like(v)}
    return sorted(values, key=len, reverse=True)


def _secret_like(value: str) -> bool:
    """Long, one word, not a path (``AWS_SHARED_CREDENTIALS_FILE=/root/.aws/credentials`` is no secret)."""
    return (
        len(value) >= _MIN_ENV_SECRET
        and value != REDACTED
        and not any(c.isspace() for c in value)
        and not value.startswith(("/", "~", "./", "../"))
    )


def scrub_text(text: str, known: list[str] | None = None) -> str:
    """``text`` with every secret the patterns, or the ``known`` literal values, find replaced."""
    for value in env_secrets() if known is None else known:
        if value in text:
            text = text.replace(value, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrub(value: Any, known: list[str] | None = None) -> Any:
    """Return ``value`` with secrets replaced; builtins in, builtins out.

    Strings are scrubbed with :func:`scrub_text`; a dict entry whose key looks secret
    loses its whole value (unless it is a container, which is scrubbed entry by entry).
    """
    secrets = env_secrets() if known is None else known
    if isinstance(value, str):
        return scrub_text(value, secrets)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            name = scrub_text(key, secrets) if isinstance(key, str) else key
            if (
                isinstance(key, str)
                and secret_name(key)
                and item is not None
                and not isinstance(item, (dict, list, bool))
            ):
                out[name] = REDACTED
            else:
                out[name] = scrub(item, secrets)
        return out
    if isinstance(value, list):
        return [scrub(item, secrets) for item in value]
    if isinstance(value, tuple):
        return tuple(scrub(item, secrets) for item in value)
    return value
