"""Trying a remote input again (--retries N): opening a remote file, reading it in an event loop,
scanning it for `samples update`. A RemoteInputError is tried again N times, 1, 2, 4 ... s apart,
each time announced; the last one is raised with the number of tries."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from framework.errors import RemoteInputError

log = logging.getLogger(__name__)

T = TypeVar("T")


def retried(attempt: Callable[[], T], retries: int) -> T:
    """What `attempt()` returns, on its first success within `retries` + 1 tries."""
    for n in range(retries):
        try:
            return attempt()
        except RemoteInputError as err:
            log.warning("%s; trying again in %d s (%d of %d)", err.message, 2**n, n + 1, retries)
            time.sleep(2**n)
    try:
        return attempt()
    except RemoteInputError as err:
        tries = f"tried {retries + 1} time(s); --retries N tries again"
        raise RemoteInputError(err.message, err.location, f"{err.hint} ({tries})" if err.hint else tries) from None
