"""Shared fixtures: the real open-data files, small generated samples, and config writing."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from framework.execute.pipeline import RunOptions, RunReport, execute
from framework.plan.model import RunSelection
from framework.testing.generate import write_events, write_muon_scale_factors, write_shape_corrections
from framework.testing.spec import GeneratorSpec

REPO = Path(__file__).resolve().parent.parent
DATA_ENV = "RDF_ANALYSIS_DATA"


def pytest_configure(config: pytest.Config) -> None:
    """One cache folder for the whole session (shared by every test and the runs they start),
    never the user's; nothing is compiled after a run unless a test asks for it."""
    import tempfile

    if "RDF_ANALYSIS_CACHE" not in os.environ:
        os.environ["RDF_ANALYSIS_CACHE"] = config._rdf_cache = tempfile.mkdtemp(prefix="rdf-analysis-test-cache-")  # type: ignore[attr-defined]
    os.environ.setdefault("RDF_ANALYSIS_COMPILE", "off")
    # Hypothesis keeps its example database under the working directory by default.
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(os.environ["RDF_ANALYSIS_CACHE"], "hypothesis"))


# What may appear in the checkout while tests run: Python's byte code and build metadata, and
# the generated inputs the shipped configs name (data/, git-ignored, shared with the README's
# demo command so neither generates them twice).
_EXPECTED_LITTER = ("__pycache__/", ".egg-info/", ".pytest_cache/", " data/")


def _source_tree_changes() -> set[str] | None:
    """Every file git would report as new, changed or ignored in the checkout (None outside git)."""
    import subprocess

    try:
        listing = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain=v1", "--untracked-files=all", "--ignored"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {line for line in listing.splitlines() if not any(part in line for part in _EXPECTED_LITTER)}


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config._tree_before = _source_tree_changes()  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Tests never write into the source tree: fail the session if they did."""
    before = getattr(session.config, "_tree_before", None)
    after = _source_tree_changes()
    if before is None or after is None:
        return
    written = sorted(after - before)
    if written:
        print("\ntests wrote into the source tree (they must write under tmp_path):\n  " + "\n  ".join(written))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    folder = getattr(config, "_rdf_cache", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real CMS open-data files: ../shared/data beside the repository, or $RDF_ANALYSIS_DATA.

    Outside CI a missing folder skips the test with the reason; in CI (CI=true) it fails.
    """
    path = Path(os.environ.get(DATA_ENV, REPO.parent / "shared" / "data"))
    if not (path / "nanoAOD_2015_CMS_Open_Data_ttbar.root").is_file():
        reason = f"real open-data files not found in {path} (set {DATA_ENV})"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + ": in CI they must be present")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small generated samples, made once per test session."""
    folder = tmp_path_factory.mktemp("generated")
    specs = {
        "zmumu": GeneratorSpec(process="zmumu", events=30000, seed=101),
        "ttbar": GeneratorSpec(process="ttbar", events=20000, seed=102),
        "data": GeneratorSpec(process="data", mixture={"zmumu": 8000, "ttbar": 3000}, seed=103),
    }
    files = {}
    for name, spec in specs.items():
        files[name] = folder / f"{name}.root"
        write_events(spec, files[name])
    files["corrections"] = folder / "muon_sf.json"
    write_muon_scale_factors(files["corrections"], ["muon_id", "muon_iso"])
    files["shape_corrections"] = folder / "shape_corrections.json"
    write_shape_corrections(files["shape_corrections"])
    return files


WriteConfig = Callable[..., Path]


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    """Write YAML text (dedented) to a file in the test's folder; returns its path."""

    def write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write


RunConfig = Callable[..., RunReport]


@pytest.fixture
def run_config(tmp_path: Path) -> RunConfig:
    """Run a config in this process; returns the report (plan, histograms, output files)."""
    counter = iter(range(1000))

    def run(config: Path, threads: int = 2, systematics: str = "all", **selection: object) -> RunReport:
        out = tmp_path / f"out{next(counter)}"
        options = RunOptions(
            config=config,
            output=out,
            selection=RunSelection(systematics=systematics, **selection),  # type: ignore[arg-type]
            threads=threads,
        )
        return execute(options)

    return run


@pytest.fixture(scope="session")
def kinematics_header() -> Path:
    return REPO / "cpp" / "kinematics.h"


@pytest.fixture(scope="session")
def agc_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunReport]:
    """The AGC example (analyses/agc_ttbar/config.yaml, its generated samples) run once for the session:
    its output folder and report."""
    out = tmp_path_factory.mktemp("agc") / "out"
    return out, execute(RunOptions(config=REPO / "analyses" / "agc_ttbar" / "config.yaml", output=out, threads=2))
