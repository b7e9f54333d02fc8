"""The one place ROOT is imported and C++ is declared to its interpreter."""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from framework.errors import ConfigError, Location

CPP = Path(__file__).parent / "cpp"
FRAMEWORK_HEADER = CPP / "framework.hxx"
FILL_HEADER = CPP / "fill.hxx"
CORRECTIONS_HEADER = CPP / "corrections.hxx"


# ROOT's XRootD client, left to its defaults, waits about ten minutes on a server killed during the event
# loop (5 connection attempts 120 s apart; measured with ROOT 6.40: still waiting after 300 s), 30 minutes
# on one that stops answering, and then fails every request to that server at once for 30 minutes (a server
# back in time is not asked again). Trying again is --retries' job (announced, 1, 2, 4 ... s apart), so the
# client tries once and gives up soon. Its settings are read once, when it starts (the first root:// URL);
# values in the environment win.
XROOTD_CLIENT = {
    "XRD_CONNECTIONRETRY": "1",  # one connection attempt (a refused one fails at once)
    "XRD_CONNECTIONWINDOW": "10",  # seconds for that attempt when the host does not answer
    "XRD_REQUESTTIMEOUT": "60",  # seconds for an answer: a frozen server, or a large read on a slow link
    "XRD_TIMEOUTRESOLUTION": "1",  # timeouts checked every second (default 15 s, added to each timeout)
    "XRD_STREAMERRORWINDOW": "0",  # a server that failed is asked again on the next try
}


@functools.cache
def root() -> Any:
    """Import ROOT once, quietly: its wheel warns that it is a pre-release on import."""
    os.environ.setdefault("EXTRA_CLING_ARGS", "-O2")
    for name, value in XROOTD_CLIENT.items():
        os.environ.setdefault(name, value)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"(?s).*alpha stage", category=UserWarning)
        import ROOT

    ROOT.gROOT.SetBatch(True)
    ROOT.gErrorIgnoreLevel = ROOT.kWarning
    # A root:// URL whose host is this machine is otherwise read from the local disk at the URL's
    # path (RDataFrame: "file /path does not exist"), bypassing the server and its name mapping.
    ROOT.gEnv.SetValue("TFile.ForceRemote", 1)
    # ROOT 6.40's plugin for http(s):// names its constructor with the namespace of the class
    # (ROOT::Deprecated::TWebFile), which the plugin manager cannot call; the same plugin with
    # the plain constructor name works. Load the shipped handlers first, then replace that one.
    ROOT.gPluginMgr.FindHandler("TFile", "http://")
    ROOT.gPluginMgr.AddHandler(
        "TFile", "^http[s]?:", "ROOT::Deprecated::TWebFile", "Net", "TWebFile(const char*,Option_t*)"
    )
    return ROOT


_declared: set[Path] = set()


@contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Collect what C++ writes to file descriptor 2 (cling's diagnostics) instead of showing it."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode(errors="replace").splitlines())


def compiler_messages(lines: list[str]) -> str:
    """The useful part of cling's output: the error lines, without generated-code excerpts."""
    keep = [ln.split("error: ", 1)[1] for ln in lines if "error: " in ln]
    return "; ".join(dict.fromkeys(keep)) or "\n".join(lines[-5:])


def declare_code(code: str, what: str, origin: Location | None = None) -> None:
    """Give C++ to the interpreter; a failure is a ConfigError naming `what`."""
    with captured_stderr() as lines:
        ok = root().gInterpreter.Declare(code)
    if not ok:
        raise ConfigError(f"{what} does not compile: {compiler_messages(lines)}", origin)


def declare_file(path: Path, origin: Location | None = None) -> None:
    """`#include` a C++ file into the interpreter once per process."""
    path = path.resolve()
    if path in _declared:
        return
    declare_code(f'#include "{path}"', f"C++ file {str(path)!r}", origin)
    _declared.add(path)


def is_cpp_symbol(name: str) -> bool:
    """Whether the interpreter knows `name` (a function, variable or type from a C++ helper)."""
    import cppyy

    root()
    return hasattr(cppyy.gbl, name)


class CppSymbols:
    """`is_cpp_symbol` for the plan, answered from the cache (area `symbols`) while the `cpp:`
    files are unchanged: the interpreter then reads no header. On a name the cache does not
    know, and on any changed header, every header is declared (reporting the first that does
    not compile at its YAML line) and the answers are stored for the next run."""

    def __init__(self, cpp_files: list[Path], origins: list[Location | None]) -> None:
        from framework import cache
        from framework.engine.stepsource import header_digest, toolchain

        self.files = list(zip(cpp_files, origins))
        tools = toolchain()
        key = cache.key_of("symbols", header_digest(cpp_files), tools.root_build if tools else None)
        self._entry = cache.entry_path("symbols", key)
        stored = cache.read_entry(self._entry)
        self.known: dict[str, bool] = dict(stored["names"]) if stored else {}
        self._declared = False
        if stored is None:
            self.declare()
            self._save()

    def declare(self) -> None:
        if not self._declared:
            for path, origin in self.files:
                declare_file(path, origin)
            self._declared = True

    def _save(self) -> None:
        from framework import cache

        cache.write_entry(self._entry, {"names": self.known})

    def __call__(self, name: str) -> bool:
        if name not in self.known:
            self.declare()
            self.known[name] = is_cpp_symbol(name)
            self._save()
        return self.known[name]


def file_digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for p in paths:
        digest.update(p.read_bytes())
    return digest.hexdigest()


def versions() -> dict[str, str]:
    import boost_histogram
    import hist

    from framework import __version__

    return {
        "framework": __version__,
        "root": str(root().gROOT.GetVersion()),
        "python": sys.version.split()[0],
        "hist": hist.__version__,
        "boost_histogram": boost_histogram.__version__,
    }
