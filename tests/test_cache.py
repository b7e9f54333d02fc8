"""What is kept between runs: input metadata, compiled steps, the session library, symbols.

Each test has a cache folder of its own where it matters; runs that must compile do it in
`run-analysis` processes (`--compile now`), as users meet it. Histograms must be identical
(one thread: the same order of additions) whether steps were interpreted or compiled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import REPO

from framework import cache
from framework.engine import compiled, stepsource
from framework.inputs.files import FileFacts
from framework.present.results import differences


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(cache.ENV, str(folder))
    return folder


def _config(folder: Path, generated: dict[str, Path], cut: str = "nGoodJet >= 2", header: Path | None = None) -> Path:
    """A small analysis on the session's generated samples: collections, defines, a cut, a weight
    array, a correctionlib factor and a shape variation, so every kind of step is compiled."""
    header = header or REPO / "cpp" / "kinematics.h"
    path = folder / "config.yaml"
    path.write_text(f"""
schema: 1
analysis: cached
cpp: [{header}]
samples:
  ttbar: {{files: [{generated["ttbar"]}], xsec: 832.0}}
  data: {{files: [{generated["data"]}], is_data: true}}
lumi: 10.0
collections:
  GoodJet: {{from: Jet, where: "Jet_pt > 30 && abs(Jet_eta) < 2.4", sort_by: pt}}
  GoodMuon: {{from: Muon, where: "Muon_pt > 20 && Muon_tightId"}}
defines:
  HT: kin::scalar_sum(GoodJet_pt)
selection:
  - {{name: jets, cut: "{cut}"}}
categories:
  nmu: {{expr: nGoodMuon, integer: [0, 3]}}
systematics:
  scale: {{kind: weight, from_array: LHEScaleWeight, indices: [0, 8]}}
  jes: {{kind: shape, column: Jet_pt, up: "Jet_pt * 1.03", down: "Jet_pt * 0.97"}}
  muon_id: {{kind: correctionlib, file: {generated["corrections"]}, correction: muon_id, key_input: scale_factors,
            nominal: nominal, up: systup, down: systdown, inputs: {{abseta: "abs(GoodMuon_eta)", pt: GoodMuon_pt}}}}
histograms:
  ht: {{axes: [{{expr: HT, bins: 20, range: [0, 800]}}, nmu]}}
  jet_pt: {{axes: [{{expr: GoodJet_pt, bins: 20, range: [0, 400]}}]}}
""")
    return path


def _run(config: Path, out: Path, *extra: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """`run-analysis` in a process of its own, one thread; returns its --profile."""
    profile = out.with_suffix(".json")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "framework",
            str(config),
            "-o",
            str(out),
            "-j",
            "1",
            "--force",
            "--no-progress",
            "--profile",
            str(profile),
            *extra,
        ],
        check=True,
        cwd=REPO,
        env=env or os.environ.copy(),
        capture_output=True,
        text=True,
    )
    return json.loads(profile.read_text())


def test_input_facts_come_from_the_cache_until_the_file_changes(own_cache, generated, tmp_path, monkeypatch):
    import framework.inputs.files as inputs

    path = tmp_path / "copy.root"
    path.write_bytes(generated["ttbar"].read_bytes())
    first = FileFacts(str(path), "Events")
    entries, fmt = first.opened("s", None, 0, None)  # type: ignore[arg-type]
    columns = first.columns()
    assert (entries, fmt) == (20000, "TTree") and columns["Jet_pt"] == "ROOT::VecOps::RVec<float>"

    def never(*args: object) -> None:
        raise AssertionError("the file was opened although the cache knows it")

    monkeypatch.setattr(inputs, "_open", never)
    again = FileFacts(str(path), "Events")
    assert again.opened("s", None, 0, None) == (entries, fmt)  # type: ignore[arg-type]
    assert again.columns() == columns

    path.write_bytes(generated["zmumu"].read_bytes())  # a changed file: new size and time
    monkeypatch.undo()
    monkeypatch.setenv(cache.ENV, str(own_cache))
    assert FileFacts(str(path), "Events").opened("s", None, 0, None)[0] == 30000  # type: ignore[arg-type]


def test_a_damaged_entry_is_deleted_and_never_used(own_cache):
    path = cache.entry_path("inputs", "ab" * 32)
    cache.write_entry(path, {"entries": 5})
    assert cache.read_entry(path) == {"entries": 5}
    text = json.loads(path.read_text())
    text["entry"]["entries"] = 6  # edited without its checksum
    path.write_text(json.dumps(text))
    assert cache.read_entry(path) is None and not path.exists()
    cache.write_entry(path, {"entries": 5})
    path.write_bytes(path.read_bytes()[:20])  # torn
    assert cache.read_entry(path) is None and not path.exists()


def test_compiled_steps_are_used_on_the_next_run_with_identical_histograms(generated, tmp_path):
    """Cold (interpreted) then warm (compiled) then an edited cut then edited back: the warm runs
    interpret nothing, the edit interprets only its step, and histograms are bit for bit equal."""
    config = _config(tmp_path, generated)
    cold = _run(config, tmp_path / "cold", "--compile", "now")
    warm = _run(config, tmp_path / "warm")
    assert cold["interpreted_steps"] > 10 and warm["interpreted_steps"] == 0
    assert warm["compile"] < 0.5 * cold["compile"]
    assert differences(tmp_path / "cold", tmp_path / "warm") == []

    config.write_text(config.read_text().replace('cut: "nGoodJet >= 2"', 'cut: "nGoodJet >= 3"'))
    edited = _run(config, tmp_path / "edited", "--compile", "now")
    assert edited["interpreted_steps"] == 1  # the cut, nothing else
    assert differences(tmp_path / "warm", tmp_path / "edited")  # the edit changed the histograms
    config.write_text(config.read_text().replace('cut: "nGoodJet >= 3"', 'cut: "nGoodJet >= 2"'))
    back = _run(config, tmp_path / "back")
    assert back["interpreted_steps"] == 0
    assert differences(tmp_path / "warm", tmp_path / "back") == []


def test_a_changed_header_misses_and_a_damaged_library_is_rebuilt(generated, tmp_path):
    header = tmp_path / "kinematics.h"
    header.write_text((REPO / "cpp" / "kinematics.h").read_text())
    config = _config(tmp_path, generated, header=header)
    _run(config, tmp_path / "first", "--compile", "now")

    libraries = sorted((cache.folder("compiled") / "lib").glob("*.so"), key=lambda p: p.stat().st_mtime)
    newest = libraries[-1]
    newest.write_bytes(b"not a library" + newest.read_bytes()[13:])  # damaged in place
    damaged = _run(config, tmp_path / "damaged", "--compile", "now")
    assert damaged["interpreted_steps"] > 0  # never loaded: its checksum fails
    rebuilt = _run(config, tmp_path / "rebuilt")
    assert rebuilt["interpreted"] == [], (damaged["interpreted"], rebuilt["interpreted"])
    assert differences(tmp_path / "first", tmp_path / "rebuilt") == []

    header.write_text(header.read_text() + "\n// an edit that changes nothing but the file\n")
    changed = _run(config, tmp_path / "changed", "--compile", "off")
    assert changed["interpreted_steps"] > 10  # every step includes the header


def test_a_changed_root_or_compiler_changes_every_key(monkeypatch):
    sources = stepsource.StepSources([REPO / "cpp" / "kinematics.h"], [])
    code = stepsource.define_code("x", [("MET_pt", "Float_t")], "MET_pt * 2")
    key = sources.source(code).key
    assert stepsource.StepSources([REPO / "cpp" / "kinematics.h"], []).source(code).key == key
    tools = stepsource.toolchain()
    assert tools is not None
    for changed in (replace(tools, root_build="another ROOT build"), replace(tools, compiler_version="g++ 99")):
        monkeypatch.setattr(stepsource, "toolchain", lambda changed=changed: changed)
        other = stepsource.StepSources([REPO / "cpp" / "kinematics.h"], []).source(code).key
        assert other != key and compiled.lookup(other) is None


def test_two_runs_at_once_share_one_cache(generated, tmp_path):
    config = _config(tmp_path, generated)
    command = [
        sys.executable,
        "-m",
        "framework",
        str(config),
        "-j",
        "1",
        "--force",
        "--no-progress",
        "--compile",
        "now",
    ]
    runs = [
        subprocess.Popen(
            [*command, "-o", str(tmp_path / f"out{i}")],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [r.communicate(timeout=600)[0] for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outputs
    assert differences(tmp_path / "out0", tmp_path / "out1") == []
    assert compiled.wait(120)
    assert _run(config, tmp_path / "after")["interpreted_steps"] == 0
    assert differences(tmp_path / "out0", tmp_path / "after") == []


def test_cache_command_shows_and_clears(own_cache, generated, tmp_path):
    config = _config(tmp_path, generated)
    env = {**os.environ, cache.ENV: str(own_cache)}
    _run(config, tmp_path / "out", env=env)
    info = subprocess.run(
        [sys.executable, "-m", "framework", "cache", "info"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert str(own_cache) in info and "inputs" in info and "compiled steps" in info
    subprocess.run(
        [sys.executable, "-m", "framework", "cache", "clear"], env=env, check=True, cwd=REPO, capture_output=True
    )
    assert not any(p.is_file() for p in own_cache.rglob("*"))
    bad = subprocess.run(
        [sys.executable, "-m", "framework", "cache", "clear", "nonsense"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "no cache area 'nonsense'" in bad.stderr
