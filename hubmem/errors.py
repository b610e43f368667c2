"""One typed error hierarchy; each class carries its exit code and reads as one line.

The CLI turns any `HubmemError` into ``Error: <message>`` on stderr and exits with its
`exit_code`. Codes are stable and documented in the README (generated from `exit_code_table`).
Anything else is a bug: `InternalError` (exit 1, "internal error: ..." and a hint to report it),
the traceback only with ``HUBMEM_DEBUG=1``. Never a Hub error: an exception hubmem did not expect
says nothing about the network.
"""

from __future__ import annotations

import re

REDACTED = "***"
_secrets: set[str] = set()  # the tokens this process was given, in every form they were given


def keep_secret(value: str | None) -> None:
    """Never let `value` (a Hub token) appear in an error or an output: trimmed of surrounding
    whitespace (so inside every echo of the untrimmed form, repr'd or not), and each run of 8 or more
    characters that no quoting escapes (what is left verbatim of a token holding a control character
    once repr() or JSON escapes it)."""
    if value and value.strip():
        _secrets.add(value.strip())
        _secrets.update(re.findall(r"[A-Za-z0-9._~+/=-]{8,}", value))


def secret_bytes() -> list[bytes]:
    """Every secret `keep_secret` was given, as bytes: to find one in an answer before it is stored."""
    return [secret.encode() for secret in _secrets]


def redact(text: str) -> str:
    """`text` with every secret passed to `keep_secret` replaced by ***."""
    for secret in sorted(_secrets, key=len, reverse=True):  # longest first: a form inside another
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class HubmemError(Exception):
    """Base class: a failure the user can act on."""

    exit_code = 1
    #: one-line description for the README's exit-code table
    meaning = "unexpected error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        # every message reaches the user through here (stderr, audit rows, JSON): no token in any
        message = redact(message)
        hint = None if hint is None else redact(hint)
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


REPORT_HINT = "set HUBMEM_DEBUG=1 for the traceback and report it"


class InternalError(HubmemError):
    exit_code = 1
    meaning = "internal error: a bug in hubmem (rerun with HUBMEM_DEBUG=1 for the traceback and report it)"

    @classmethod
    def of(cls, e: BaseException) -> InternalError:
        """'internal error: TypeError: <first line of its message, cut at 200 characters>'."""
        lines = str(e).strip().splitlines()
        text = lines[0] if lines else ""
        text = text if len(text) <= 200 else text[:199] + "…"
        return cls(
            f"internal error: {type(e).__name__}: {text}" if text else f"internal error: {type(e).__name__}"
        )


class InvalidInputError(HubmemError):
    exit_code = 3
    meaning = "invalid repo id, local path or option value"


class LocalFileError(HubmemError):
    exit_code = 4
    meaning = "a local file or folder cannot be read (permissions), or HF_HOME is not a directory"


class RepoNotFoundError(HubmemError):
    exit_code = 10
    meaning = "repository not found (or private and no valid token)"


class GatedRepoError(HubmemError):
    exit_code = 11
    meaning = "gated repository: accept its terms on the Hub and pass a token"


class RevisionNotFoundError(HubmemError):
    exit_code = 12
    meaning = "revision (branch, tag or commit) not found"


class ConfigNotFoundError(HubmemError):
    exit_code = 13
    meaning = "the repository has no config.json"


class MalformedConfigError(HubmemError):
    exit_code = 14
    meaning = (
        "config.json is not valid JSON, lacks a required field or holds a value no model has (Input limits)"
    )


class MalformedHeaderError(HubmemError):
    exit_code = 16
    meaning = (
        "a safetensors header is malformed or truncated, or its entries do not fit the file (Input limits)"
    )


class HeaderTooLargeError(MalformedHeaderError):
    exit_code = 18
    meaning = "a safetensors header is larger than 25 MB (huggingface_hub's limit)"


class MalformedGGUFError(HubmemError):
    exit_code = 15
    meaning = (
        "a GGUF header is truncated or corrupt, of a version the gguf package does not read, or claims "
        "absurd counts or lengths"
    )


class UnknownDtypeError(HubmemError):
    exit_code = 17
    meaning = "a tensor or option names a dtype hubmem does not know"


class EngineRefusedError(HubmemError):
    exit_code = 19
    meaning = (
        "serve: the engine refuses the model or an option (TP size not dividing the heads, a KV dtype "
        "the GPU lacks, an architecture it does not run)"
    )


class HubServerError(HubmemError):
    exit_code = 20
    meaning = "the Hub answered with an HTTP error (5xx after retries, or another unexpected status)"


class HubTimeoutError(HubmemError):
    exit_code = 21
    meaning = "the Hub did not answer in time (see --timeout)"


class HubConnectionError(HubmemError):
    exit_code = 22
    meaning = "the Hub cannot be reached and nothing usable is cached"


class OfflineNotCachedError(HubmemError):
    exit_code = 23
    meaning = "offline mode (HF_HUB_OFFLINE=1) and this repo/revision was never fetched"


class BatchFailedError(HubmemError):
    exit_code = 30
    meaning = "a batch finished but at least one repository failed"


class WillNotFitError(HubmemError):
    exit_code = 40
    meaning = "check: the model will not fit on the given GPUs (checked before the disk)"


class NotEnoughDiskError(HubmemError):
    exit_code = 41
    meaning = "check: it fits on the GPUs, but the Hugging Face cache's disk lacks room for the download"


def exit_code_table() -> list[tuple[int, str, str]]:
    """(code, error class, meaning) for every documented exit code, ordered by code."""
    rows = [(0, "-", "success")]
    rows.append((2, "-", "usage error (unknown option, missing argument)"))
    rows.append((130, "-", "interrupted (Ctrl-C); `hubmem audit` still prints the rows that finished"))
    stack = list(HubmemError.__subclasses__())
    while stack:
        cls = stack.pop()
        rows.append((cls.exit_code, cls.__name__, cls.meaning))
        stack.extend(cls.__subclasses__())
    return sorted(rows)
