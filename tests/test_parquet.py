"""Parquet samples: the same events as ROOT and as Parquet give identical histograms, through
the framework's cached, streamed conversion (several row groups, jagged columns as RVecs)."""

from __future__ import annotations

import numpy as np
from configs import zmumu_and_data  # tests/ is on the path

from framework.execute.pipeline import RunOptions, execute
from framework.inputs import parquet

BODY = """
collections:
  GoodMuon: {from: Muon, where: "Muon_pt > 25 && Muon_tightId", sort_by: pt}
  GoodJet: {from: Jet, where: "Jet_pt > 30"}
categories:
  njet: {expr: nGoodJet, integer: [0, 3]}
weight: genWeight
histograms:
  met: {axes: [{expr: MET_pt, bins: 20, range: [0, 200]}, njet]}
  mu_pt: {axes: [{expr: GoodMuon_pt, bins: 20, range: [0, 200]}]}
systematics:
  scale: {kind: weight, from_array: LHEScaleWeight, indices: [0, 8]}
  jes: {kind: shape, column: Jet_pt, up: "Jet_pt * 1.03", down: "Jet_pt * 0.97"}
"""


def config_text(zmumu: object, data: object) -> str:
    return zmumu_and_data("parquet", 1.0, str(zmumu), str(data), 1.0, BODY)


def test_parquet_and_root_give_identical_histograms(generated, write_config, tmp_path, monkeypatch):
    monkeypatch.setenv("RDF_ANALYSIS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(parquet, "BATCH_ROWS", 7000)  # several row groups and written batches
    files = {}
    for name in ("zmumu", "data"):
        files[name] = tmp_path / f"{name}.parquet"
        parquet.export(generated[name], "Events", files[name])
    local = execute(
        RunOptions(
            config=write_config(config_text(**{k: generated[k] for k in files}), "root.yaml"),
            output=tmp_path / "root",
        )
    )
    from_parquet = execute(
        RunOptions(config=write_config(config_text(**files), "parquet.yaml"), output=tmp_path / "pq")
    )
    for a, b in zip(local.result.samples, from_parquet.result.samples):
        assert a.events == b.events
        for name in ("met", "mu_pt"):
            # weighted sums to 1e-12: threads add in another order when the files' clusters differ
            np.testing.assert_allclose(
                a.histograms[name].view(flow=True).value,
                b.histograms[name].view(flow=True).value,
                rtol=1e-12,
                atol=1e-12,
            )
    cached = sorted((tmp_path / "cache" / "parquet").glob("*.root"))
    assert len(cached) == 2
    assert from_parquet.plan.datasets[0].format == "RNTuple"  # RDataFrame reads its clusters in parallel
    stamp = cached[0].stat().st_mtime_ns
    execute(RunOptions(config=tmp_path / "parquet.yaml", output=tmp_path / "pq2"))
    assert cached[0].stat().st_mtime_ns == stamp  # reused, not converted again


def test_parquet_over_http(generated, write_config, tmp_path, monkeypatch):
    """A Parquet URL is read through fsspec (here from a loopback server) into the same histograms."""
    from http_files import serve  # tests/ is on the path

    monkeypatch.setenv("RDF_ANALYSIS_CACHE", str(tmp_path / "cache"))
    served = tmp_path / "served"
    served.mkdir()
    for name in ("zmumu", "data"):
        parquet.export(generated[name], "Events", served / f"{name}.parquet")
    local = execute(
        RunOptions(
            config=write_config(config_text(**{k: generated[k] for k in ("zmumu", "data")}), "root.yaml"),
            output=tmp_path / "root",
        )
    )
    with serve(served) as url:
        files = {k: f"{url}/{k}.parquet" for k in ("zmumu", "data")}
        remote = execute(RunOptions(config=write_config(config_text(**files), "url.yaml"), output=tmp_path / "url"))
    for a, b in zip(local.result.samples, remote.result.samples):
        np.testing.assert_allclose(
            a.histograms["met"].view(flow=True).value, b.histograms["met"].view(flow=True).value, rtol=1e-12, atol=1e-12
        )
