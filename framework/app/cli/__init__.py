"""`run-analysis`: the command line. `run-analysis CONFIG ...` runs an analysis (`run`); its other
commands each have their module here, named by the command's first word.

The framework's messages are log records (`logging.getLogger(__name__)` in each module); the
command line shows them, INFO and up, as their text alone on stderr. Each command module
imports what it needs inside its functions, so that a command loads only its own stage.
"""

from __future__ import annotations

import logging
import sys

from framework.app.cli import cache, export, fit, merge, plot, run, samples, schema, skim, status, submit
from framework.errors import FrameworkError

# in the order `--help` lists them
OTHER_COMMANDS = (skim, plot, export, fit, submit, status, merge, samples, schema, cache)
BY_NAME = {command.COMMAND.split()[0]: command for command in OTHER_COMMANDS}

FRAMEWORK_LOG = logging.getLogger("framework")
log = logging.getLogger(__name__)


class _StderrLines(logging.Handler):
    """A record as its text alone on the sys.stderr of the moment (which tests and workers replace)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 - a message that cannot be shown must not stop the run
            self.handleError(record)


def show_log_messages() -> None:
    """Show the framework's log records of level INFO and up on stderr, unless a handler is set
    already (a worker process marks each record with its level: `framework.app.worker`)."""
    if not FRAMEWORK_LOG.handlers:
        FRAMEWORK_LOG.addHandler(_StderrLines())
        FRAMEWORK_LOG.setLevel(logging.INFO)


def main(argv: list[str] | None = None, warm: bool = False) -> int:
    """The command line; `warm`: this process has run before (a worker), so no start-up time."""
    argv = list(sys.argv[1:] if argv is None else argv)
    show_log_messages()
    epilog = "other commands: " + "; ".join(f"'run-analysis {c.COMMAND}': {c.DESCRIPTION}" for c in OTHER_COMMANDS)
    try:
        if argv and argv[0] in BY_NAME:
            return BY_NAME[argv[0]].main(argv[1:])
        return run.main(argv, warm, epilog)
    except FrameworkError as err:
        log.error("error: %s", err)
        return err.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
