"""What every vaebench command line shares: a bad flag fails in one line.

See docs/design.md ("Bad input").
"""

from __future__ import annotations

import argparse


class Parser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` whose errors are one line and exit 2.

    argparse prints its whole usage block before the message; a user (or a DVC stage's log)
    then has to find the one line that says what is wrong. Here it is the only line:
    `error: <prog>: argument --judge: invalid choice: 'x' (choose from ...) (see --help)`.
    """

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")
