"""Where an input file lives, one kind per way of reaching it: a local path, an http(s) URL, an
XRootD URL (root://, roots://, xroot://), or another fsspec URL (s3://, ...).

Each kind says whether its files are remote (opening them is retried with --retries) and what tells
a file unchanged (`identity`, the cache key of what is read from it); a URL kind also says which files
a glob names (`expand`; only XRootD servers list folders, so a glob in another URL is taken as written;
local globs are resolved in `files.expand_entry`, relative to the YAML file).

XRootD is reached through ROOT's own client (TNetXNGSystem through `gSystem`), never through the
XRootD Python bindings: the `root` wheel ships its own XRootD client library, and the bindings'
library loaded into the same process crashes the first call that crosses them (measured with
ROOT 6.40 and xrootd 6.2). fsspec-xrootd, which uses the bindings, runs in a separate process
(`framework.inputs.parquet`).
"""

from __future__ import annotations

import fnmatch
import glob
import os
import urllib.request
from typing import Any


class LocalFile:
    remote = False

    def identity(self, path: str) -> list[Any] | None:
        """Size and modification time; None when the file cannot be read."""
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return [stat.st_size, stat.st_mtime_ns]


class URL:
    """Any URL; one of another scheme than below is read through fsspec (s3://, gs://: Parquet samples)."""

    remote = True

    def identity(self, url: str) -> list[Any] | None:
        """The size and ETag (or modification time) the store reports; None when it cannot be told."""
        try:
            from fsspec.core import url_to_fs

            filesystem, path = url_to_fs(url)
            info = filesystem.info(path)
        except (ImportError, OSError, ValueError):
            return None
        return [info.get("size"), info.get("ETag") or info.get("mtime")]

    def expand(self, url: str) -> list[str]:
        return [url]


class HttpURL(URL):
    def identity(self, url: str) -> list[Any] | None:
        """The size and ETag (or Last-Modified) of a HEAD request; None when it cannot be told."""
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10) as response:
                size = response.headers.get("Content-Length")
                tag = response.headers.get("ETag") or response.headers.get("Last-Modified")
        except (OSError, ValueError):
            return None
        return [size, tag] if size and tag else None


class XRootDURL(URL):
    """root://host:port//absolute/path[?opaque]: stat and folder listings through ROOT's XRootD client."""

    def identity(self, url: str) -> list[Any] | None:
        """Size and modification time the server reports; None when the server cannot be asked."""
        return _stat(url)

    def expand(self, url: str) -> list[str]:
        """The files a glob in the path names, in order, each folder with magic listed on the server.
        Raises OSError naming a folder that cannot be listed (server down, no such folder)."""
        base, query = url.split("?", 1) if "?" in url else (url, "")
        scheme, _, rest = base.partition("://")
        host, _, path = rest.partition("/")
        if not glob.has_magic(path):
            return [url]
        server = f"{scheme}://{host}/"
        found = [""]
        for part in path.strip("/").split("/"):
            if not glob.has_magic(part):
                found = [f"{folder}/{part}" for folder in found]
                continue
            found = [
                f"{folder}/{name}"
                for folder in found
                for name in sorted(_listing(server + (folder or "/")))
                if fnmatch.fnmatchcase(name, part) and (part.startswith(".") or not name.startswith("."))
            ]
        return [server + f + (f"?{query}" if query else "") for f in found]


def _stat(url: str) -> list[Any] | None:
    from framework.engine.rootenv import root

    r = root()
    stat = r.FileStat_t()
    if r.gSystem.GetPathInfo(url, stat) != 0:
        return None
    return [int(stat.fSize), int(stat.fMtime)]


def _listing(folder_url: str) -> list[str]:
    """Names in one folder on an XRootD server. Opening a folder succeeds even with no server
    (the listing is asked for later and comes back empty), so the folder is checked first."""
    from framework.engine.rootenv import root

    if _stat(folder_url) is None:
        raise OSError(f"cannot list {folder_url}")
    system = root().gSystem
    handle = system.OpenDirectory(folder_url)
    names = []
    try:
        while name := system.GetDirEntry(handle):
            names.append(str(name))
    finally:
        system.FreeDirectory(handle)
    return [n for n in names if n not in (".", "..")]


XROOTD_SCHEMES = ("root", "roots", "xroot", "xroots")


def kind_of(path: str) -> LocalFile | URL:
    """The kind of location `path` names, by its URL scheme (none: a local path)."""
    scheme, separator, _ = path.partition("://")
    if not separator:
        return LocalFile()
    if scheme in XROOTD_SCHEMES:
        return XRootDURL()
    if scheme in ("http", "https"):
        return HttpURL()
    return URL()
