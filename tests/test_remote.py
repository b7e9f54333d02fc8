"""Files over HTTP on loopback: passed to ROOT untouched, the same histograms as local files,
and a clear error naming the sample and URL when the server or the file is not there."""

from __future__ import annotations

import shutil
import socket

import numpy as np
import pytest
from configs import zmumu_and_data  # tests/ is on the path
from http_files import serve  # tests/ is on the path (rootdir conftest)

from framework.errors import InputError
from framework.execute.pipeline import RunOptions, execute

BODY = """
collections:
  GoodMuon: {from: Muon, where: "Muon_pt > 25 && Muon_tightId"}
histograms:
  met: {axes: [{expr: MET_pt, bins: 20, range: [0, 200]}]}
  mu_pt: {axes: [{expr: GoodMuon_pt, bins: 20, range: [0, 200]}]}
systematics:
  jes: {kind: shape, column: Jet_pt, up: "Jet_pt * 1.03", down: "Jet_pt * 0.97"}
"""


def config_text(zmumu: object, data: object) -> str:
    return zmumu_and_data("remote", 1.0, str(zmumu), str(data), 1.0, BODY)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_http_files_give_the_local_histograms(generated, write_config, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    for name in ("zmumu", "data"):
        shutil.copy(generated[name], served / f"{name}.root")
    local = execute(
        RunOptions(
            config=write_config(config_text(zmumu=served / "zmumu.root", data=served / "data.root"), "local.yaml"),
            output=tmp_path / "local",
        )
    )
    with serve(served) as url:
        remote = execute(
            RunOptions(
                config=write_config(config_text(zmumu=f"{url}/zmumu.root", data=f"{url}/data.root"), "remote.yaml"),
                output=tmp_path / "remote",
            )
        )
    assert remote.result.samples[0].sample.files == [f"{url}/zmumu.root"]  # untouched, no download
    for a, b in zip(local.result.samples, remote.result.samples):
        for name in ("met", "mu_pt"):
            np.testing.assert_allclose(
                a.histograms[name].view(flow=True).value,
                b.histograms[name].view(flow=True).value,
                rtol=1e-12,
                atol=1e-12,
            )


def test_unreachable_server_and_missing_file_are_named(generated, write_config, tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/zmumu.root"
    config = write_config(config_text(zmumu=url, data=generated["data"]))
    with pytest.raises(InputError, match=rf"sample 'zmumu': cannot open {url}(.|\n)*tried 2 time\(s\)") as info:
        execute(RunOptions(config=config, output=tmp_path / "out", retries=1))
    assert info.value.location.key == "samples.zmumu.files"
    with serve(tmp_path) as base:
        missing = write_config(config_text(zmumu=f"{base}/nothing.root", data=generated["data"]), "missing.yaml")
        with pytest.raises(InputError, match=rf"sample 'zmumu': cannot open {base}/nothing.root"):
            execute(RunOptions(config=missing, output=tmp_path / "out"))
    assert not (tmp_path / "out").exists()
