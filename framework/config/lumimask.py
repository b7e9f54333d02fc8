"""Certified luminosity: the `lumi_mask:` files of eras and data samples, read and checked.

A CMS certification ("golden") JSON maps run numbers, written as strings, to lists of inclusive
[first, last] luminosity-section ranges: `{"273150": [[61, 64], [66, 75]], ...}`. Part of the load
stage: every file named under `eras:` or `samples:` is read and checked when the configuration
loads, and a mistake is reported at the YAML key that names the file, before any input is opened.
The plan takes each data sample's ranges (`sample_lumi_masks`); the event loop looks events up in
them with one binary search (`fw::LumiMask`, engine/cpp/framework.hxx). Simulation is never masked:
a `lumi_mask` on a simulated sample is an error, and an era's mask applies to its data samples only.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framework.errors import ConfigError, Location

if TYPE_CHECKING:
    from framework.config.load import LoadedConfig

CUTFLOW_ROW = "lumi_mask"  # the cutflow row of the events the mask keeps, before any cut
RUN_COLUMN = "run"
LUMI_COLUMN = "luminosityBlock"
LARGEST = 2**32 - 1  # run and luminosityBlock are 32-bit unsigned numbers in NanoAOD
SHAPE = '{"273150": [[61, 64], [66, 75]], ...}'
_RUN_KEY = re.compile(r"[0-9]+")
ONCE = "give each run once, with all its ranges"


@dataclass(frozen=True)
class LumiMaskFile:
    """A checked certified-luminosity JSON: its path, the SHA-256 of its bytes, its (run, first, last)
    ranges sorted by run then first section (disjoint, inclusive), and the YAML key that named it."""

    path: Path
    sha256: str
    ranges: tuple[tuple[int, int, int], ...]
    origin: Location

    @property
    def runs(self) -> int:
        return len({run for run, _, _ in self.ranges})

    @property
    def lumi_sections(self) -> int:
        return sum(last - first + 1 for _, first, last in self.ranges)


class _DuplicateRun(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateRun(key)
        out[key] = value
    return out


def _is_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_lumi_mask(path: Path, origin: Location) -> LumiMaskFile:
    """Read and check one certified-luminosity JSON. ConfigError at `origin` (the YAML key naming
    it) when it is missing, is not JSON of the golden-JSON shape, or has a range that is reversed,
    overlapping or out of order."""

    def fail(problem: str, hint: str = f"a certified-luminosity JSON looks like {SHAPE}") -> ConfigError:
        return ConfigError(f"lumi mask {path}: {problem}", origin, hint)

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"lumi mask file {str(path)!r} does not exist",
            origin,
            "paths in 'lumi_mask' are relative to the YAML file that names them",
        ) from None
    except OSError as err:
        raise ConfigError(f"cannot read lumi mask file {str(path)!r}: {err.strerror or err}", origin) from None
    try:
        document = json.loads(data, object_pairs_hook=_no_duplicate_keys)
    except _DuplicateRun as err:
        raise fail(f"run {str(err)!r} appears twice", ONCE) from None
    except UnicodeDecodeError:
        raise fail("not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise fail(f"not valid JSON: {err.msg} (line {err.lineno}, column {err.colno} of the JSON)") from None
    if not isinstance(document, dict):
        raise fail(f"the top level is a {type(document).__name__}, not an object of runs")
    ranges: list[tuple[int, int, int]] = []
    keys: dict[int, str] = {}
    for key, value in document.items():
        run = int(key) if _RUN_KEY.fullmatch(key) else None
        if run is None or not 1 <= run <= LARGEST:
            raise fail(f"run key {key!r} is not a run number (an integer from 1 to {LARGEST}, written as a string)")
        if run in keys:
            raise fail(f"run {run} appears twice (as {keys[run]!r} and {key!r})", ONCE)
        keys[run] = key
        if not isinstance(value, list):
            raise fail(f"run {key}: {json.dumps(value)} is not a list of [first, last] ranges")
        previous: tuple[int, int] | None = None
        for i, item in enumerate(value):
            if not (isinstance(item, list) and len(item) == 2 and all(_is_number(x) for x in item)):
                raise fail(
                    f"run {key}, range {i}: {json.dumps(item)} is not a [first, last] pair of lumi-section numbers"
                )
            first, last = item
            if not (1 <= first <= LARGEST and 1 <= last <= LARGEST):
                raise fail(f"run {key}, range {i}: {item} has a luminosity section outside 1 to {LARGEST}")
            if first > last:
                raise fail(
                    f"run {key}, range {i}: {item} has its first luminosity section after its last",
                    "write each range as [first, last], both included",
                )
            if previous is not None and first <= previous[1]:
                how = "overlaps" if last >= previous[0] else "comes before"
                raise fail(
                    f"run {key}, range {i}: {item} {how} the range before it, {list(previous)}",
                    "a run's ranges must be disjoint and in increasing order (adjacent ranges are fine)",
                )
            previous = (first, last)
            ranges.append((run, first, last))
    return LumiMaskFile(path, hashlib.sha256(data).hexdigest(), tuple(sorted(ranges)), origin)


def _declared(config: LoadedConfig) -> list[tuple[tuple[str, str, str], str]]:
    """(YAML key, path as written) of every `lumi_mask`, eras first."""
    spec = config.spec
    found = [(("eras", name, "lumi_mask"), era.lumi_mask) for name, era in spec.eras.items() if era.lumi_mask]
    found += [(("samples", name, "lumi_mask"), s.lumi_mask) for name, s in spec.samples.items() if s.lumi_mask]
    return found


def sample_lumi_masks(config: LoadedConfig) -> dict[str, LumiMaskFile]:
    """The certified luminosity of each collision-data sample that has one: its own `lumi_mask`, else
    its era's. Every declared file is read and checked (also those no sample uses); a `lumi_mask` on
    a simulated sample is an error."""
    spec = config.spec
    files: dict[tuple[str, str, str], LumiMaskFile] = {}
    for key, written in _declared(config):
        origin = config.locate(*key)
        if key[0] == "samples" and not spec.samples[key[1]].is_data:
            raise ConfigError(
                f"sample {key[1]!r} is simulation: a lumi mask applies to collision data only",
                origin,
                "remove 'lumi_mask' from the sample (an era's mask applies to the era's data samples only)",
            )
        files[key] = read_lumi_mask((config.source.file_of(key).parent / written).resolve(), origin)
    masks = {}
    for name, s in spec.samples.items():
        own, era = ("samples", name, "lumi_mask"), ("eras", str(s.era), "lumi_mask")
        if own in files:
            masks[name] = files[own]
        elif s.is_data and s.era is not None and era in files:
            masks[name] = files[era]
    return masks


def check_lumi_masks(config: LoadedConfig) -> None:
    """Every lumi mask reads and fits its samples; no cut takes the name of the mask's cutflow row."""
    sample_lumi_masks(config)
    if not _declared(config):
        return
    for i, cut in enumerate(config.spec.selection):
        if cut.name == CUTFLOW_ROW:
            raise ConfigError(
                f"cut name {CUTFLOW_ROW!r} is the cutflow row of the lumi mask",
                config.locate("selection", i, "name"),
                "choose another name for the cut",
            )
