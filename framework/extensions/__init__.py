"""Extensions: optional parts of an analysis that a config switches on by a top-level key.

An extension is one class in its own module, with

    key: str
        The top-level YAML key that switches it on (`tnp`); its section's schema is a field of
        that name in `framework.config.schema.analysis.AnalysisSpec`, None when not written.
    expand(config: LoadedConfig) -> LoadedConfig
        Called by `load_config` after the core checks: checks the extension's section and
        returns the configuration with what the section stands for added (defines, histograms,
        `cpp:` headers, each with a location in the section). The input config is left as it was.
    after_run(config: LoadedConfig, outdir: Path) -> list[Path]
        Called after the event loop (`framework.execute.after_run`), with the run's output
        folder: measures from the outputs, writes its results and returns the files it wrote.

Adding an extension is its module and one line in EXTENSIONS. Extension modules are imported
only when a config uses them, so this module imports nothing of the framework.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from framework.config.load import LoadedConfig

# top-level key -> "module:class"
EXTENSIONS = {
    "tnp": "framework.extensions.tnp.extension:TagAndProbe",
}


class Extension(Protocol):
    key: str

    def expand(self, config: LoadedConfig) -> LoadedConfig: ...

    def after_run(self, config: LoadedConfig, outdir: Path) -> list[Path]: ...


@functools.cache
def extension(key: str) -> Extension:
    """The extension registered under `key`."""
    module, name = EXTENSIONS[key].split(":")
    extension_class = getattr(importlib.import_module(module), name)
    return extension_class()


def used_by(config: LoadedConfig) -> list[Extension]:
    """The extensions whose key the configuration sets, in EXTENSIONS order."""
    return [extension(key) for key in EXTENSIONS if getattr(config.spec, key) is not None]


def expand(config: LoadedConfig) -> LoadedConfig:
    """The configuration after every extension it uses has expanded it."""
    for used in used_by(config):
        config = used.expand(config)
    return config
