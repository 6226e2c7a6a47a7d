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
_MIN_PARTIAL = 8  # a cut secret (pytest's repr truncation) is redacted when at least this much shows
_PARTIAL_SPAN = 64  # ...and at most this much of it is looked for (bounds the work per secret)

# Why the patterns look the way they do: speed is linear only if the regex engine rarely starts
# a match. Each pattern begins with a literal (sre then skips ahead at C speed), runs on the
# lower-cased text (``(?i)`` disables that skip), is only run when its literal occurs at all,
# and quantifiers that could rescan are bounded or possessive. The matches give spans of the
# original text, which are replaced in one splice.
_NOT_SOURCE = r"(?<!\.py)(?<!\.json)(?<!\.yaml)(?<!\.yml)"  # a file name, as in "secrets.py:93:", is no secret
_SEP = r"(?:\\*+[\"'])?+[ \t]*+[:=][ \t]*+(?:\\*+[\"'])?+"  # = : ": ' \": \" (JSON escaped once or more)
_VALUE = r"(?!\[redacted\])(?:(?<=[\"'])[^\"'\r\n\\]++|[^\s\"'&,;<>)}\]\\]++)"
_NAME_TAIL = r"[a-z0-9_.\-]{0,32}+"
# token VALUE, password VALUE (a space, no sign): only a value that looks made (a digit, or long), not a word
_MADE = r"(?=[a-z0-9_.~+/=\-]*?[0-9])[a-z0-9_.~+/=\-]{8,}+|[a-z0-9_.~+/=\-]{20,}+"
# (literal that must occur, pattern on the lower-cased text with group "v" or "w" around what is redacted)
_LOWER_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (literal, re.compile(pattern))
    for literal, pattern in (
        # password=..., ?token=..., AWS_SECRET_ACCESS_KEY=..., "api_key": "...", \"password\": \"...\",
        # and for the words people write before a value: "token ghp_0123...", "password hunter22"
        *(
            (
                literal,
                rf"{literal}{rest}{_NAME_TAIL}(?=[\\\"' \t:=]){_NOT_SOURCE}"
                rf"(?:{_SEP}(?P<v>{_VALUE})|(?<=[a-z]) (?P<w>{_MADE}))",
            )
            for literal, rest in (
                ("secret", ""),
                ("pass", "(?:w(?:or)?d|phrase)"),
                ("token", ""),
                # api_key, api-key, apikey, access_key, private_key (x-api-key too): found by "key", then checked
                ("key", "(?:" + "|".join(f"(?<={w}key)|(?<={w}[_-]key)" for w in ("api", "access", "private")) + ")"),
                ("credential", ""),
                ("signature", ""),
            )
        ),
        # Authorization: Bearer xyz / "Authorization": "AWS4-HMAC-SHA256 Credential=..." (to the end of the value)
        *((header, rf"{header}{_SEP}(?P<v>(?!\[redacted\])[^\r\n\"'\\]++)") for header in ("authorization", "cookie")),
        # scheme://user:password@host -> scheme://user:[redacted]@host
        ("://", r"://[^\s/@:\"'<>]*+:(?P<v>[^\s/@\"'<>]++)@"),
    )
)
_KEY_PREFIXES = ("AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA", "APKA", "AROA", "ASCA")
_TOKEN_PREFIXES = ("FwoGZXIvYXdz", "FQoGZXIvYXdz", "IQoJb3Jp", "AgoJb3JpZ2lu")
# Case matters for these, so they run on the original text. AWS access key ids (long-term AKIA,
# temporary ASIA, other principals), and a bare 40-character secret access key right after one
# ("AKIA... wJalr...", CSV credential files):
_KEY_ID_REST = (
    r"(?<![A-Za-z0-9]A...)[A-Z0-9]{16}(?![A-Za-z0-9])"  # nothing alphanumeric before or after the 20 characters
    r"(?:[\s,;:=|\"'\\]{1,8}+[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=]))?"  # and the secret key after it, if any
)
_KEY_ID = re.compile(rf"A(?:{'|'.join(p[1:] for p in _KEY_PREFIXES)}){_KEY_ID_REST}")
_KEY_IDS_BY_PREFIX = tuple((prefix, re.compile(prefix + _KEY_ID_REST)) for prefix in _KEY_PREFIXES)
# AWS session tokens (base64 of a protobuf that starts the same way every time)
_SESSION_TOKEN = re.compile(rf"(?:{'|'.join(_TOKEN_PREFIXES)})[A-Za-z0-9+/=]{{16,}}+")
_TOKEN_MARKS = ("oGZXIvYXdz", "oJb3Jp")  # in every session-token prefix


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
    """``text`` with every secret the patterns, or the ``known`` literal values, find replaced.

    Linear in the length of ``text`` (see ``benchmarks/bench_scrub.py``).
    """
    for value in env_secrets() if known is None else known:
        text = _known_secret(text, value)
    lower = text.lower()
    if len(lower) != len(text):  # a few characters lower-case to two ('İ'): keep offsets aligned
        lower = text.translate(_ASCII_LOWER)
    spans: list[tuple[int, int]] = []
    for literal, pattern in _LOWER_PATTERNS:
        if literal in lower:
            spans += [match.span(match.lastgroup or 0) for match in pattern.finditer(lower)]
    if text.count("A") * 64 < len(text):  # the usual case: one fast pass finds every key id
        spans += [match.span() for match in _KEY_ID.finditer(text)]
    else:  # text full of "A"s: look only for the prefixes that occur, each by its own literal
        for prefix, pattern in _KEY_IDS_BY_PREFIX:
            if prefix in text:
                spans += [match.span() for match in pattern.finditer(text)]
    if any(mark in text for mark in _TOKEN_MARKS):
        spans += [match.span() for match in _SESSION_TOKEN.finditer(text)]
    return _splice(text, spans) if spans else text


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _splice(text: str, spans: list[tuple[int, int]]) -> str:
    """Replace each span (merged where they overlap) by :data:`REDACTED`, in one pass."""
    parts: list[str] = []
    position = 0
    for start, end in sorted(spans):
        if end <= position:
            continue  # inside a span already replaced
        if start > position:
            parts.append(text[position:start])
        elif parts and parts[-1] == REDACTED:
            parts.pop()  # overlaps the previous one: extend it
        parts.append(REDACTED)
        position = max(position, end)
    parts.append(text[position:])
    return "".join(parts)


@functools.lru_cache(maxsize=256)
def _partial_patterns(value: str) -> tuple[re.Pattern[str], re.Pattern[str]] | None:
    """Patterns for a cut ``value``: a prefix of it before ``...``/``…``, and (on the reversed
    text) a suffix of it after one, each at least :data:`_MIN_PARTIAL` characters long."""
    if len(value) <= _MIN_PARTIAL:
        return None

    def growing(chars: str) -> str:  # "abcdefgh" + optional "i", "ij", "ijk"... as nested groups
        head, rest = re.escape(chars[:_MIN_PARTIAL]), chars[_MIN_PARTIAL:_PARTIAL_SPAN]
        return head + "".join(f"(?:{re.escape(c)}" for c in rest) + ")?" * len(rest)

    prefix = re.compile(growing(value) + r"(?=\.\.\.|…)")
    suffix = re.compile(growing(value[::-1]) + r"(?=\.\.\.|…)")  # "..." reversed is "..."
    return prefix, suffix


def _known_secret(text: str, value: str) -> str:
    """Redact ``value``, and what shows of it where pytest cut it (``'fAkEsEcR...MNOP'``), both sides."""
    if value[:_MIN_PARTIAL] in text:  # also true when the whole value is there
        text = text.replace(value, REDACTED)
        patterns = _partial_patterns(value)
        if patterns is not None:
            text = patterns[0].sub(REDACTED, text)
    if len(value) > _MIN_PARTIAL and value[-_MIN_PARTIAL:] in text:
        patterns = _partial_patterns(value)
        if patterns is not None:
            text = patterns[1].sub(REDACTED[::-1], text[::-1])[::-1]
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
