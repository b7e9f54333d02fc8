"""Tag and probe as an extension (`framework.extensions`): the `tnp:` key."""

from __future__ import annotations

from pathlib import Path

from framework.config.load import LoadedConfig
from framework.extensions.tnp.config import expand_tnp


class TagAndProbe:
    """At load, the `tnp:` section becomes defines, the histogram `tnp` and the header `tnp.hxx`;
    after the run, the efficiencies and scale factors are measured from that histogram."""

    key = "tnp"

    def expand(self, config: LoadedConfig) -> LoadedConfig:
        return expand_tnp(config)

    def after_run(self, config: LoadedConfig, outdir: Path) -> list[Path]:
        # the fits need iminuit, scipy, numba and matplotlib: imported only after a run
        from framework.extensions.tnp.outputs import run_tnp

        return run_tnp(config, outdir)
