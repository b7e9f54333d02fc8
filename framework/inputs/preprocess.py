"""Preprocessing stages: files the analysis reads, made from other files by a C++ writer.

A stream of raw words is not an event table: RDataFrame reads it entry by entry in order
(one thread) and a writer class from the analysis's `cpp:` files groups it and writes a new
ROOT tree (with clusters), which samples then read like any other input. A stage runs when
its output is missing or older than its inputs or its C++ files.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from framework.config.load import LoadedConfig
from framework.engine.rootenv import captured_stderr, compiler_messages, declare_file, root
from framework.errors import ConfigError, InputError
from framework.testing.generate import write_events

log = logging.getLogger(__name__)


def _paths(config: LoadedConfig, name: str) -> tuple[list[Path], Path]:
    stage = config.spec.preprocess[name]
    base = config.source.file_of(("preprocess", name, "files", 0)).parent
    return [(base / f).resolve() for f in stage.files], (base / stage.output).resolve()


def run_preprocessing(config: LoadedConfig, cpp_files: list[Path]) -> dict[str, float]:
    """Run the stages whose output is out of date; returns seconds per stage run."""
    timings: dict[str, float] = {}
    for name, stage in config.spec.preprocess.items():
        inputs, output = _paths(config, name)
        if stage.generate is not None and not inputs[0].exists():
            log.info("generating the input of stage %r -> %s", name, inputs[0])
            write_events(stage.generate, inputs[0])
        missing = [str(p) for p in inputs if not p.exists()]
        if missing:
            raise InputError(
                f"preprocessing stage {name!r}: input file(s) {missing} do not exist",
                config.locate("preprocess", name, "files"),
            )
        newest = max(p.stat().st_mtime for p in [*inputs, *cpp_files])
        if output.exists() and output.stat().st_mtime >= newest:
            continue
        start = time.perf_counter()
        for path in cpp_files:
            declare_file(path)
        _run_stage(config, name, inputs, output)
        timings[name] = time.perf_counter() - start
        log.info("preprocessing %r: %.2f s -> %s", name, timings[name], output)
    return timings


def _run_stage(config: LoadedConfig, name: str, inputs: list[Path], output: Path) -> None:
    r = root()
    stage = config.spec.preprocess[name]
    if r.IsImplicitMTEnabled():
        r.DisableImplicitMT()  # the writer sees the entries in order
    frame = r.RDataFrame(stage.tree, [str(p) for p in inputs])
    available = {str(c) for c in frame.GetColumnNames()}
    for i, column in enumerate(stage.columns):
        if column not in available:
            raise ConfigError(
                f"stage {name!r}: column {column!r} is not in tree {stage.tree!r}",
                config.locate("preprocess", name, "columns", i),
            )
    types = [str(frame.GetColumnType(c)) for c in stage.columns]
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    files = ", ".join(f'"{p}"' for p in inputs)
    arguments = ", ".join(f"{t} a{i}" for i, t in enumerate(types))
    call = ", ".join(f"a{i}" for i in range(len(types)))
    columns = ", ".join(f'"{c}"' for c in stage.columns)
    code = (
        f'{{ ROOT::RDataFrame frame("{stage.tree}", std::vector<std::string>{{{files}}});'
        f' {stage.writer} writer("{tmp}");'
        f" frame.Foreach([&writer]({arguments}) {{ writer({call}); }}, {{{columns}}});"
        f" writer.Finish(); }}"
    )
    try:
        with captured_stderr() as messages:
            ok = r.gInterpreter.Declare(f"namespace fw_stage_{name} {{ inline void run() {code} }}")
        if not ok:
            raise ConfigError(
                f"stage {name!r}: the writer {stage.writer!r} does not compile: {compiler_messages(messages)}",
                config.locate("preprocess", name, "writer"),
                "the writer is a C++ class from the 'cpp:' files, constructed with the output path",
            )
        getattr(r, f"fw_stage_{name}").run()
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
