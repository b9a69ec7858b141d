"""The one error type of sweep configs, and the did-you-mean every message of it may carry."""

from __future__ import annotations

import difflib
from pathlib import Path

__all__ = ["ConfigError", "did_you_mean"]


def did_you_mean(word: object, choices: list[str] | tuple[str, ...]) -> str:
    """`"; did you mean 'x'?"` for the closest of `choices` to a misspelt `word`, else ""."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class ConfigError(Exception):
    """A bad sweep file or command-line value; `str()` is the one line shown to the user.

    file: the sweep file, or "--override KEY=VALUE" for a command-line value; key: the dotted
    key at fault ("" for the whole file); problem: what is wrong and what is allowed; line: the
    1-based YAML line of the key, where known.
    """

    def __init__(self, file: str | Path, key: str, problem: str, line: int | None = None):
        self.file, self.key, self.problem, self.line = str(file), key, problem, line
        where = f"{file}:{line}" if line else f"{file}"
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")


def unknown_name(kind: str, word: object, choices: list[str] | tuple[str, ...]) -> str:
    """ "unknown <kind> 'x'; allowed: a, b; did you mean 'y'?" — the one wording of the
    validation message for a name that is not registered."""
    return f"unknown {kind} {word!r}; allowed: {', '.join(choices)}{did_you_mean(word, choices)}"
