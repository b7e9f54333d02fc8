"""Parquet samples: converted once to ROOT files that RDataFrame reads, cached by content.

The ROOT 6.40 wheel has no Arrow data source, so a sample's `.parquet` file (a path or an
fsspec URL) is streamed row
group by row group (pyarrow; memory bounded by one batch) into a ROOT TTree written by uproot:
list columns become jagged branches (RVecs in RDataFrame), so collections and every other
part of the YAML work unchanged. The converted file lives in the cache folder
($RDF_ANALYSIS_CACHE, default ~/.cache/rdf-analysis/parquet), keyed by the Parquet file's
path, size and modification time, and is reused until the Parquet file changes.

    python -m framework.parquet export FILE.root TREE OUT.parquet     # Parquet copies of ROOT files
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from .exceptions import InputError

BATCH_ROWS = 100_000  # rows per written basket: the memory bound of a conversion


def cache_folder() -> Path:
    return Path(os.environ.get("RDF_ANALYSIS_CACHE", Path.home() / ".cache" / "rdf-analysis")) / "parquet"


def converted(path: Path | str, tree: str) -> Path:
    """The ROOT file holding the Parquet file's rows as tree `tree`, made on first use. `path`
    may be an fsspec URL (https://, s3://, ...): keyed by its size and ETag or modification time."""
    if isinstance(path, str) and "://" in path:
        import fsspec  # noqa: PLC0415

        info = fsspec.filesystem(path.split("://", 1)[0]).info(path)
        identity = f"{path}|{info.get('size')}|{info.get('ETag') or info.get('mtime') or ''}"
        stem = Path(path.split("?", 1)[0]).stem
    else:
        path = Path(path)
        stat = path.stat()
        identity = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        stem = path.stem
    key = hashlib.sha256(f"{identity}|{tree}".encode()).hexdigest()[:24]
    target = cache_folder() / f"{stem}-{key}.root"
    if not target.exists():
        convert(path, target, tree)
    return target


def convert(source: Path | str, target: Path, tree: str) -> None:
    try:
        import awkward as ak  # noqa: PLC0415
        import pyarrow.parquet as pq  # noqa: PLC0415
        import uproot  # noqa: PLC0415
    except ImportError as err:
        raise InputError(f"reading {source} needs pyarrow and awkward", hint="pip install 'rdf-analysis[parquet]'") from err
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        if isinstance(source, str):  # a URL: read through fsspec, row group by row group
            import fsspec  # noqa: PLC0415

            parquet = pq.ParquetFile(fsspec.open(source, "rb").open())
        else:
            parquet = pq.ParquetFile(source)
        with uproot.recreate(tmp) as f:
            for n, batch in enumerate(parquet.iter_batches(batch_size=BATCH_ROWS)):
                table = ak.from_arrow(batch)
                columns = {name: table[name] for name in table.fields}
                if n == 0:
                    f[tree] = columns
                else:
                    f[tree].extend(columns)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def export(root_file: Path, tree: str, target: Path) -> None:
    """A Parquet copy of a ROOT tree (flat and jagged branches), row group by row group."""
    import awkward as ak  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415
    import uproot  # noqa: PLC0415

    writer = None
    with uproot.open(root_file) as f:
        t = f[tree]
        names = [b for b in t.keys() if not t[b].typename.startswith("std::")]
        for chunk in t.iterate(names, step_size=BATCH_ROWS):
            table = ak.to_arrow_table(chunk, extensionarray=False)
            writer = writer or pq.ParquetWriter(target, table.schema)
            writer.write_table(table)
    if writer is not None:
        writer.close()


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "export":
        sys.exit("usage: python -m framework.parquet export FILE.root TREE OUT.parquet")
    export(Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
