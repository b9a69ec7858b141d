"""The one line that says why a trial failed: the first line of the real exception.

Ray wraps a worker's exception (RayTaskError, whose `cause` is the real one), and pydantic's
ValidationError puts its message on the third line and ends with a URL; neither wrapper's
first or last line tells a user anything. Tables, MLflow and the console show `reason(...)`.
"""

from __future__ import annotations

import re

import pydantic

# Final outcomes; a 'failed' (crashed) trial is retried on rerun. Here, not in
# benchmark.tracking, so that Ray workers (benchmark.tune) do not import MLflow.
DONE = ("finished", "diverged")
_MAX = 500
# A traceback's exception line: `module.Name: message` at column 0.
_EXC_LINE = re.compile(r"^((?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt))"
                       r"(?:: (.*))?$")  # fmt: skip


def _unwrap(exc: BaseException) -> BaseException:
    # RayTaskError / RayActorError carry the worker's exception as `cause`; a TuneError may
    # carry it as __cause__.
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "cause", None)
        if isinstance(inner, BaseException):
            exc = inner
            continue
        if type(exc).__name__ == "TuneError" and exc.__cause__ is not None:
            exc = exc.__cause__
            continue
        break
    return exc


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX else text[: _MAX - 3] + "..."


def reason(exc: BaseException) -> str:
    """`Type: first line of the message` of the innermost real exception.

    For a pydantic ValidationError: `ValidationError: <field path>: <message>` of its first
    error, without pydantic's "Value error, " prefix and documentation URL.
    """
    exc = _unwrap(exc)
    name = type(exc).__name__
    if isinstance(exc, pydantic.ValidationError) and exc.errors():
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        return _short(f"{name}: {loc}: {msg}" if loc else f"{name}: {msg}")
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return _short(f"{name}: {lines[0]}" if lines else name)


def reason_from_traceback(text: str) -> str:
    """The same line parsed from a traceback's text (Ray's error.txt), when the exception object
    itself is not available. Empty when no exception line is found."""
    lines = text.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        m = _EXC_LINE.match(lines[i])
        if not m:
            continue
        name = m.group(1).rsplit(".", 1)[-1]
        message = (m.group(2) or "").strip()
        if name == "ValidationError":
            # "N validation error(s) for Model" / "<field path>" / "  Value error, msg [type=...]"
            rest = [x for x in lines[i + 1 :] if x.strip()]
            if len(rest) >= 2:
                loc = rest[0].strip()
                msg = re.sub(r"\s*\[type=.*$", "", rest[1].strip()).removeprefix("Value error, ")
                return _short(f"{name}: {loc}: {msg}")
        return _short(f"{name}: {message}" if message else name)
    return ""
