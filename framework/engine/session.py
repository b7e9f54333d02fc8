"""The C++ session of a run (`cpp/session.cxx`) seen from Python, through ctypes.

Its entry points come from the compiled session library when the cache has it
(`framework.engine.compiled`), else from the interpreter, which compiles `session.cxx` itself. Either
way the calls are plain C calls: building a graph asks the interpreter nothing but the
expressions that are not compiled yet.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from framework.engine.compiled import CPP, session_library
from framework.engine.rootenv import declare_code, root

SESSION_SOURCE = CPP / "session.cxx"

_c = ctypes
_LL = _c.c_longlong
_P = _c.c_void_p
_S = _c.c_char_p
# name: (part of session.cxx, result type, argument types)
SIGNATURES: dict[str, tuple[str, Any, list[Any]]] = {
    "fw_session_new": ("CORE", _P, [_c.c_uint]),
    "fw_session_free": ("CORE", None, [_P]),
    "fw_error": ("CORE", _S, [_P]),
    "fw_loop_errors": ("CORE", _S, [_P]),
    "fw_file_entries": ("CORE", _LL, [_P, _LL, _c.POINTER(_c.c_ulonglong), _LL]),
    "fw_dataset": ("CORE", _LL, [_P, _S, _S, _c.POINTER(_c.c_int), _S, _S, _c.c_int, _c.c_int]),
    "fw_apply": ("CORE", _LL, [_P, _LL, _P]),
    "fw_column_type": ("CORE", _LL, [_P, _LL, _S, _S, _c.c_ulong]),
    "fw_fill_entries": ("CORE", _LL, [_P, _LL, _LL]),
    "fw_fill_data": ("CORE", _LL, [_P, _LL, _LL, _c.POINTER(_c.POINTER(_c.c_double)), _c.POINTER(_c.c_ulonglong)]),
    "fw_fill_release": ("CORE", _LL, [_P, _LL, _LL]),
    "fw_jit": ("CORE", _LL, [_P]),
    "fw_run": ("CORE", _LL, [_P, _c.POINTER(_LL), _LL, _c.POINTER(_c.c_double)]),
    "fw_book_with": ("CORE", _LL, [_P, _LL, _P, _S, _S]),
    "fw_constant": ("CONSTANT", _LL, [_P, _LL, _S, _c.POINTER(_c.c_double), _LL]),
    "fw_vary_fill": ("VARY", _LL, [_P, _LL]),
    "fw_fill_has_variation": ("VARY", _LL, [_P, _LL, _S]),
    "fw_define": ("INTERPRET", _LL, [_P, _LL, _S, _S]),
    "fw_filter": ("INTERPRET", _LL, [_P, _LL, _S, _S]),
    "fw_vary": ("INTERPRET", _LL, [_P, _LL, _S, _S, _S, _S]),
    "fw_read_ranges": ("RANGES", _LL, [_P, _LL, _S, _S, _c.POINTER(_LL), _c.POINTER(_LL)]),
    "fw_progress_bar": ("PROGRESS", _LL, [_P, _LL]),
    "fw_watch_progress": ("PROGRESS", _LL, [_P, _LL, _S, _c.c_ulonglong, _c.c_ulonglong]),
    "fw_snapshot": ("SNAPSHOT", _LL, [_P, _LL, _S, _S, _S, _c.c_int, _c.c_int]),
}


class _Api:
    """The session's functions by short name (`define` for fw_define), bound on first use: from
    the compiled library, or from the interpreter, which compiles the part of `session.cxx`
    that holds the function when a run first needs it."""

    def __init__(self) -> None:
        root()
        self.library = session_library()
        self._parts: set[str] = set()

    @property
    def compiled(self) -> bool:
        return self.library is not None

    def _address(self, name: str, part: str) -> int:
        if self.library is not None:
            return ctypes.cast(getattr(self.library, name), ctypes.c_void_p).value or 0
        if part not in self._parts:
            macro = "" if part == "CORE" else f"#define FW_SESSION_{part}\n"
            declare_code(f'{macro}#include "{SESSION_SOURCE}"', f"part {part} of {SESSION_SOURCE.name}")
            self._parts.add(part)
        r = root()
        return int(r.addressof(r.gInterpreter.FindSym(name)))

    def __getattr__(self, short: str) -> Any:
        name = f"fw_{short}"
        if name not in SIGNATURES:
            raise AttributeError(short)
        part, result, args = SIGNATURES[name]
        function = ctypes.CFUNCTYPE(result, *args)(self._address(name, part))
        setattr(self, short, function)
        return function


@functools.cache
def api() -> _Api:
    return _Api()


def interpreted() -> bool:
    """Whether this process's session comes from the interpreter (no compiled library yet)."""
    return not api().compiled


class SessionError(Exception):
    """A call into the session failed; the message is the C++ exception's."""


def _lines(items: Sequence[str]) -> bytes:
    return "\n".join(items).encode()


class Session:
    """One run's graphs. Nodes and fills are integer handles into the C++ session."""

    def __init__(self, nslots: int) -> None:
        self._api = api()
        self._ptr = self._api.session_new(nslots)

    def close(self) -> None:
        if self._ptr:
            self._api.session_free(self._ptr)
            self._ptr = None

    def __del__(self) -> None:
        self.close()

    def _check(self, value: int) -> int:
        if value < 0:
            raise SessionError(self._api.error(self._ptr).decode(errors="replace"))
        return value

    def dataset(
        self,
        tree: str,
        files: Sequence[str],
        file_samples: Sequence[int],
        sample_column: str,
        dataset_column: str,
        index: int,
        count_entries: bool,
    ) -> int:
        """A dataset's first node; with `count_entries`, the loop counts the entries it reads from each file."""
        samples = (ctypes.c_int * len(file_samples))(*file_samples)
        return self._check(
            self._api.dataset(
                self._ptr,
                tree.encode(),
                _lines(files),
                samples,
                sample_column.encode(),
                dataset_column.encode(),
                index,
                count_entries,
            )
        )

    def read_ranges(self, node: int, tree: str, files: Sequence[str], ranges: Sequence[Sequence[int]]) -> int:
        """Only the entries [begin, end) of each file (--max-events, batch parts within a file)."""
        begins = (ctypes.c_longlong * len(ranges))(*(r[0] for r in ranges))
        ends = (ctypes.c_longlong * len(ranges))(*(r[1] for r in ranges))
        return self._check(self._api.read_ranges(self._ptr, node, tree.encode(), _lines(files), begins, ends))

    def define(self, node: int, name: str, expression: str) -> int:
        return self._check(self._api.define(self._ptr, node, name.encode(), expression.encode()))

    def filter(self, node: int, expression: str, name: str) -> int:
        return self._check(self._api.filter(self._ptr, node, expression.encode(), name.encode()))

    def vary(
        self, node: int, columns: Sequence[str], expression: str, name: str, directions: Sequence[str] = ("up", "down")
    ) -> int:
        return self._check(
            self._api.vary(self._ptr, node, _lines(columns), expression.encode(), name.encode(), _lines(directions))
        )

    def apply(self, node: int, address: int) -> int:
        return self._check(self._api.apply(self._ptr, node, address))

    def column_type(self, node: int, column: str) -> str:
        out = ctypes.create_string_buffer(1024)
        self._check(self._api.column_type(self._ptr, node, column.encode(), out, len(out)))
        return out.value.decode()

    def book_with(self, node: int, address: int, layouts: str, columns: Sequence[str]) -> int:
        """A fill action on `columns` (sample, weights, values) booked by a generated function
        (`stepsource.fill_code`) at `address`."""
        return self._check(self._api.book_with(self._ptr, node, address, layouts.encode(), _lines(columns)))

    def constant(self, node: int, name: str, values: Sequence[float]) -> int:
        array = (ctypes.c_double * len(values))(*values)
        return self._check(self._api.constant(self._ptr, node, name.encode(), array, len(values)))

    def vary_fill(self, fill: int) -> None:
        self._check(self._api.vary_fill(self._ptr, fill))

    def has_variation(self, fill: int, key: str) -> bool:
        return bool(self._check(self._api.fill_has_variation(self._ptr, fill, key.encode())))

    def fill_entries(self, fill: int, histogram: int) -> int:
        return self._check(self._api.fill_entries(self._ptr, fill, histogram))

    def take(self, fill: int, histogram: int) -> np.ndarray:
        """A copy of one histogram's cells (sum w, sum w^2 pairs); frees the C++ buffer."""
        size = ctypes.c_ulonglong(0)
        data = ctypes.POINTER(ctypes.c_double)()
        self._check(self._api.fill_data(self._ptr, fill, histogram, ctypes.byref(data), ctypes.byref(size)))
        cells = np.ctypeslib.as_array(data, shape=(size.value,)).copy() if size.value else np.zeros(0)
        self._check(self._api.fill_release(self._ptr, fill, histogram))
        return cells

    def snapshot(self, node: int, tree: str, file: str, columns: Sequence[str], rntuple: bool, variations: bool) -> int:
        """Write the events of `node` into `file` during the loop (RDataFrame's Snapshot, booked lazily)."""
        return self._check(
            self._api.snapshot(
                self._ptr, node, tree.encode(), file.encode(), _lines(columns), int(rntuple), int(variations)
            )
        )

    def progress_bar(self, node: int) -> None:
        self._check(self._api.progress_bar(self._ptr, node))

    def watch_progress(self, node: int, path: str, total: int, every: int) -> None:
        self._check(self._api.watch_progress(self._ptr, node, path.encode(), total, every))

    def jit(self) -> None:
        self._check(self._api.jit(self._ptr))

    def file_entries(self, dataset: int, nfiles: int) -> list[int]:
        """After a loop: entries read from each file of the `dataset`-th dataset made, one made with
        `count_entries` (after a failed loop, up to where it stopped)."""
        entries = (ctypes.c_ulonglong * nfiles)()
        self._check(self._api.file_entries(self._ptr, dataset, entries, nfiles))
        return list(entries)

    def loop_errors(self) -> list[str]:
        """ROOT's error messages during the last loop ("location: message")."""
        return self._api.loop_errors(self._ptr).decode(errors="replace").splitlines()

    def run(self, fills: Sequence[int]) -> float:
        """The event loop; returns the seconds RDataFrame reports for the loop itself."""
        handles = (ctypes.c_longlong * len(fills))(*fills)
        loop = ctypes.c_double(0.0)
        self._check(self._api.run(self._ptr, handles, len(fills), ctypes.byref(loop)))
        return loop.value
