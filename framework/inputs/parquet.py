"""Parquet samples: converted once to ROOT files that RDataFrame reads, cached by content.

The ROOT 6.40 wheel has no Arrow data source, so a sample's `.parquet` file (a path or an
fsspec URL) is streamed row group by row group (pyarrow; memory bounded by one batch) into an
RNTuple written by uproot, one cluster per batch (RDataFrame reads clusters in parallel):
list columns become collections (RVecs in RDataFrame), so collections and every other part
of the YAML work unchanged. The converted file lives in the cache folder
($RDF_ANALYSIS_CACHE, default ~/.cache/rdf-analysis, area `parquet`), keyed by the Parquet
file's path, size and modification time, and is reused until the Parquet file changes. A root://
URL is read through fsspec-xrootd in a child process: the XRootD Python bindings it uses cannot
share a process with ROOT's own XRootD client (`framework.inputs.locations`).

    python -m framework.inputs.parquet export FILE.root TREE OUT.parquet     # Parquet copies of ROOT files
    python -m framework.inputs.parquet convert URL OUT.root TREE             # what a root:// conversion runs
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from framework import cache
from framework.errors import InputError
from framework.inputs.locations import XRootDURL, kind_of

BATCH_ROWS = 100_000  # rows per written basket: the memory bound of a conversion


def converted(path: Path | str, tree: str) -> Path:
    """The ROOT file holding the Parquet file's rows as tree `tree`, made on first use. `path`
    may be an fsspec URL (https://, s3://, ...): keyed by its size and ETag or modification time."""
    if isinstance(path, str):
        facts = kind_of(path).identity(path)
        if facts is None:
            raise InputError(f"cannot read the Parquet file {path}", hint="is the server up and the file there?")
        identity = f"{path}|{facts[0]}|{facts[1] or ''}"
        stem = Path(path.split("?", 1)[0]).stem
    else:
        path = Path(path)
        stat = path.stat()
        identity = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        stem = path.stem
    key = hashlib.sha256(f"{identity}|{tree}|rntuple".encode()).hexdigest()[:24]
    target = cache.folder("parquet") / f"{stem}-{key}.root"
    if not target.exists():
        if isinstance(kind_of(str(path)), XRootDURL):
            _convert_in_child(str(path), target, tree)
        else:
            convert(path, target, tree)
    return target


def _convert_in_child(url: str, target: Path, tree: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "framework.inputs.parquet", "convert", url, str(target), tree],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise InputError(f"cannot convert the Parquet file {url}: {last}", hint="is the server up and the file there?")


def convert(source: Path | str, target: Path, tree: str) -> None:
    try:
        import awkward as ak
        import pyarrow.parquet as pq
        import uproot
    except ImportError as err:
        raise InputError(
            f"reading {source} needs pyarrow and awkward", hint="pip install 'rdf-analysis[parquet]'"
        ) from err
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        if isinstance(source, str):  # a URL: read through fsspec, row group by row group
            from fsspec.core import url_to_fs

            filesystem, remote_path = url_to_fs(source)
            parquet = pq.ParquetFile(filesystem.open(remote_path, "rb"))
        else:
            parquet = pq.ParquetFile(source)
        with uproot.recreate(tmp) as f:
            ntuple = None
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
                table = ak.from_arrow(batch)
                rows = ak.zip({name: table[name] for name in table.fields}, depth_limit=1)
                if ntuple is None:
                    ntuple = f.mkrntuple(tree, rows)
                else:
                    ntuple.extend(rows)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def export(root_file: Path, tree: str, target: Path) -> None:
    """A Parquet copy of a ROOT tree (flat and jagged branches), row group by row group."""
    import awkward as ak
    import pyarrow.parquet as pq
    import uproot

    writer = None
    with uproot.open(root_file) as f:
        t = f[tree]
        names = [b for b in t.keys() if not t[b].typename.startswith("std::")]  # noqa: SIM118 (an uproot TTree)
        for chunk in t.iterate(names, step_size=BATCH_ROWS):
            table = ak.to_arrow_table(chunk, extensionarray=False)
            writer = writer or pq.ParquetWriter(target, table.schema)
            writer.write_table(table)
    if writer is not None:
        writer.close()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "export":
        export(Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
    elif len(sys.argv) == 5 and sys.argv[1] == "convert":
        convert(sys.argv[2], Path(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(
            "usage: python -m framework.inputs.parquet export FILE.root TREE OUT.parquet\n"
            "       python -m framework.inputs.parquet convert URL OUT.root TREE"
        )
