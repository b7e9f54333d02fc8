"""The output format, as models: what a run writes and what reads it back agree on one definition.

An output file `<sample>.hist.zip` holds the histograms (UHI JSON), `provenance.json`
(`Provenance`) and `cutflow.json` (a list of `CutflowRow`); the folder holds `run.json`
(`RunSummary`). `provenance.json` and `run.json` carry `format_version`: a reader refuses a
file of another version, whose fields may mean something else, instead of misreading it. The
cutflow is the format of its file's provenance (its bytes stay those of a plain list of rows).
`TaskResult` is what a Dask or Spark task reports to the client (beside its part's files).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter

from framework.errors import InputError

FORMAT_VERSION = 2  # raise it when a field is added, removed or changes meaning (2: `one_sided`, `lumi_mask`)


class Frozen(BaseModel):
    """Immutable and exact: a field this framework does not know is an error, not ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class CutflowRow(Frozen):
    """Events passing a cut: the raw count, and the (normalised) weighted sum with its variance."""

    cut: str
    events: int
    weighted: float
    weighted_variance: float

    def __getitem__(self, name: str) -> Any:
        """`row["weighted"]`: a row also reads like the JSON object it is written as."""
        return getattr(self, name)

    def plus(self, other: CutflowRow) -> CutflowRow:
        """This row and the same cut's row of another part of the sample, added."""
        return CutflowRow(
            cut=self.cut,
            events=self.events + other.events,
            weighted=self.weighted + other.weighted,
            weighted_variance=self.weighted_variance + other.weighted_variance,
        )


class LumiMaskRecord(Frozen):
    """The certified-luminosity JSON a collision-data sample was masked with."""

    file: str
    sha256: str  # of the file's bytes


class Timing(Frozen):
    """Where a run's time went: set-up, event loop, its rate, and the set-up's parts."""

    setup_seconds: float
    event_loop_seconds: float
    events_per_second: float
    setup_parts: dict[str, float]


class RunProvenance(Frozen):
    """How a run was made: the same in every output file of the run."""

    config: str
    config_hash: str
    cpp_hash: str
    versions: dict[str, str]
    command: Sequence[str]
    threads: int
    systematics: Sequence[str]
    # systematics with an up variation only: their histograms hold <name>Up and no <name>Down; what
    # needs both sides (plot bands, tables, exports, the statistical model) mirrors it, 2 nominal - up
    one_sided: Sequence[str] = ()
    part: tuple[int, int] | None = None  # (i, n) of a batch part
    max_events: int | None = None
    timing: Timing | None = None  # of the whole run


class Provenance(RunProvenance):
    """`provenance.json`: the run's provenance, what this sample read and how it was normalised."""

    format_version: int = FORMAT_VERSION
    sample: str
    process: str
    is_data: bool
    era: str | None
    files: Sequence[str]
    skipped_files: Sequence[str]
    events_read: int
    entry_limit: int | None
    entry_ranges: Sequence[Sequence[int]] | None  # [begin, end) of each file, when not all of its entries
    file_identities: dict[str, tuple[int, int] | None]  # size and modification time (ns) of each local file
    xsec_pb: float | None
    lumi_inv_pb: float | None
    sum_gen_weights: float | None
    declared_sum_weights: float | None
    normalisation: float
    normalised: bool  # False for a simulated batch part: `merge` normalises the sum of the parts
    merged_parts: Sequence[str] | None = None  # the part files a merged file was added from
    lumi_mask: LumiMaskRecord | None = None  # collision data masked with a certified-luminosity JSON


class RunSummary(Timing):
    """`run.json`: the run's timing (flat, as above) and what it made."""

    format_version: int = FORMAT_VERSION
    analysis: str
    events: int
    threads: int
    outputs: Sequence[str]


class TaskResult(Frozen):
    """What a Dask or Spark task reports: which part it made, how long it took, on which worker."""

    sample: str
    part: int
    events: int
    seconds: float
    loop_seconds: float
    interpreted: int  # steps its worker's interpreter compiled (not found in the cache)
    missed: str  # the compile job of those steps (`Job.to_json`)
    worker: int  # process id
    passed: int | None = None  # a skim task: events passing the skim's cuts in the nominal
    file: str | None = None  # a skim task: the skim file it put in the skim folder


CUTFLOW = TypeAdapter(list[CutflowRow])  # `cutflow.json`


def check_version(path: Path, member: str, data: Any) -> None:
    """Refuse a file of a format version other than this framework's, naming both."""
    version = data.get("format_version") if isinstance(data, dict) else None
    if type(version) is int and version == FORMAT_VERSION:
        return
    newer = type(version) is int and version > FORMAT_VERSION
    has = f"format version {version!r}" if version is not None else "no format version"
    raise InputError(
        f"{path}: its {member} has {has}, this framework reads format version {FORMAT_VERSION} "
        f"(written by {'a newer' if newer else 'an older'} framework)",
        hint="re-run the analysis with --force to rewrite it"
        + (", or read it with the framework version that wrote it" if newer else ""),
    )


def read_provenance(path: Path) -> Provenance:
    """`provenance.json` of an output file. InputError for another format version; OSError,
    KeyError, zipfile.BadZipFile or ValueError (pydantic's ValidationError) for a broken file."""
    with zipfile.ZipFile(path) as z:
        data = json.loads(z.read("provenance.json"))
    check_version(path, "provenance.json", data)
    return Provenance.model_validate(data)


def read_records(path: Path) -> tuple[Provenance, list[CutflowRow]]:
    """The provenance and cutflow of an output file (errors as `read_provenance`)."""
    provenance = read_provenance(path)
    with zipfile.ZipFile(path) as z:
        return provenance, CUTFLOW.validate_python(json.loads(z.read("cutflow.json")))
