"""Domain errors. Each carries where in the user's YAML the problem is and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A place in a YAML file: the file, the 1-based line and the dotted key path."""

    file: str
    line: int
    key: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.key}" if self.key else f"{self.file}:{self.line}"


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The valid names closest to a misspelt one, closest first."""
    return difflib.get_close_matches(name, sorted(set(choices)), n=n, cutoff=0.6)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    matches = closest(name, choices)
    if not matches:
        return ""
    return "did you mean " + " or ".join(repr(m) for m in matches) + "?"


class FrameworkError(Exception):
    """Base of every error the framework reports to a user (exit code non-zero, no traceback)."""

    exit_code = 2

    def __init__(self, message: str, location: Location | None = None, hint: str = "") -> None:
        self.message = message
        self.location = location
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ConfigError(FrameworkError):
    """The YAML is malformed, misspelt or inconsistent."""


class InputError(FrameworkError):
    """An input file or tree is missing or unreadable."""


class RemoteInputError(InputError):
    """A remote input file could not be opened or read (its server down, or gone during the run):
    trying again may succeed (--retries)."""


class ExecutionError(FrameworkError):
    """The event loop or writing the outputs failed."""

    exit_code = 3
