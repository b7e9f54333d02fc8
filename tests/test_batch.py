"""Batch parts (--part I/N) merged with `run-analysis merge` equal one local run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from configs import GOOD_MUON, MUON_SYSTEMATICS, run_jobs_at_once, zmumu_and_data  # tests/ is on the path
from ruamel.yaml import YAML

from framework.errors import InputError
from framework.execute.pipeline import RunOptions, execute
from framework.output.merge import merge_outputs
from framework.output.write import read_histograms, read_member
from framework.plan.model import RunSelection

SELECTION_AND_HISTOGRAMS = """
selection:
  - {name: one_muon, cut: "nGoodMuon >= 1"}
histograms:
  pt: {axes: [{expr: GoodMuon_pt, bins: 20, range: [0, 200]}]}
  met: {axes: [{expr: MET_pt, bins: 20, range: [0, 200]}, {expr: nGoodMuon, integer: [0, 3]}]}
"""


@pytest.fixture(scope="module")
def config(generated, tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch")
    for name in ("zmumu", "data"):
        for i in range(3):
            shutil.copy(generated[name], folder / f"{name}_{i}.root")
    path = folder / "config.yaml"
    path.write_text(
        zmumu_and_data(
            "batch",
            10.0,
            f"{folder}/zmumu_*.root",
            f"{folder}/data_*.root",
            2000.0,
            GOOD_MUON,
            MUON_SYSTEMATICS,
            SELECTION_AND_HISTOGRAMS,
        )
    )
    return path


def test_merged_parts_equal_one_local_run(config, tmp_path):
    single = execute(RunOptions(config=config, output=tmp_path / "single"))
    parts = tmp_path / "parts"
    for i in (1, 2, 3):
        execute(RunOptions(config=config, output=parts, selection=RunSelection(part=(i, 3))))
    assert sorted(p.name for p in parts.glob("zmumu.*")) == [f"zmumu.part-{i}-of-3.hist.zip" for i in (1, 2, 3)]
    report = merge_outputs(parts)
    assert not report.missing and len(report.merged) == 2
    for sample in single.result.samples:
        merged = read_histograms(parts / f"{sample.sample.name}.hist.zip")
        for name, h in sample.histograms.items():
            np.testing.assert_allclose(merged[name].view(flow=True).value, h.view(flow=True).value, rtol=1e-12)
            np.testing.assert_allclose(merged[name].view(flow=True).variance, h.view(flow=True).variance, rtol=1e-12)
        rows = read_member(parts / f"{sample.sample.name}.hist.zip", "cutflow.json")
        assert [r["events"] for r in rows] == [r["events"] for r in sample.cutflow]
        assert [r["weighted"] for r in rows] == pytest.approx([r["weighted"] for r in sample.cutflow], rel=1e-12)


def test_missing_part_is_listed_with_its_command(config, tmp_path):
    for i in (1, 3):
        execute(
            RunOptions(
                config=config,
                output=tmp_path,
                selection=RunSelection(part=(i, 3)),
                command=("run-analysis", str(config), "--part", f"{i}/3", "-o", str(tmp_path)),
            )
        )
    proc = subprocess.run(
        [sys.executable, "-m", "framework", "merge", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    assert "zmumu: missing part(s) 2" in proc.stdout
    assert f"run-analysis {config} --part 2/3 -o {tmp_path}" in (tmp_path / "resubmit.txt").read_text()
    assert not (tmp_path / "zmumu.hist.zip").exists()


def test_part_from_another_config_is_refused(config, tmp_path):
    for i in (1, 2, 3):
        execute(RunOptions(config=config, output=tmp_path, selection=RunSelection(part=(i, 3))))
    other = config.parent / "other.yaml"
    other.write_text(config.read_text().replace("bins: 20, range: [0, 200]}]}", "bins: 10, range: [0, 200]}]}"))
    execute(RunOptions(config=other, output=tmp_path, selection=RunSelection(part=(2, 3), samples=("zmumu",))))
    with pytest.raises(InputError, match="comes from another configuration"):
        merge_outputs(tmp_path)
    assert not (tmp_path / "zmumu.hist.zip").exists()


def test_job_files_for_both_backends_run_locally_then_merge(config, tmp_path):
    from framework.config.load import load_config
    from framework.execute.submit import write_jobs

    loaded = load_config(config)
    out = tmp_path / "parts"
    condor = write_jobs(
        loaded, RunSelection(), "htcondor", tmp_path / "condor", tmp_path / "x", per="era", files_per_job=2
    )
    slurm = write_jobs(loaded, RunSelection(), "slurm", tmp_path / "slurm", out, per="sample", files_per_job=2)
    assert len(condor.commands) == 2 and len(slurm.commands) == 4  # 3 files -> 2 chunks; era: both samples at once
    description = dict(line.split(" = ", 1) for line in condor.submit_file.read_text().splitlines() if " = " in line)
    assert description["arguments"] == "$(ProcId)" and description["request_memory"] == "2048"
    assert condor.submit_file.read_text().strip().endswith("queue 2")
    sbatch = [ln for ln in slurm.submit_file.read_text().splitlines() if ln.startswith("#SBATCH")]
    assert "#SBATCH --array=0-3" in sbatch and "#SBATCH --mem=2048M" in sbatch and "#SBATCH --time=120" in sbatch
    run_jobs_at_once(slurm.folder, len(slurm.commands))  # both backends' arrays run the same run_job.sh K
    # one summary per job: jobs of two samples with the same part number do not overwrite each other's
    assert sorted(p.name for p in out.glob("run.*")) == [
        f"run.{sample}.part-{i}-of-2.json" for sample in ("data", "zmumu") for i in (1, 2)
    ]
    assert not merge_outputs(out).missing
    single = execute(RunOptions(config=config, output=tmp_path / "single"))
    for sample in single.result.samples:
        merged = read_histograms(out / f"{sample.sample.name}.hist.zip")
        for name, h in sample.histograms.items():
            np.testing.assert_allclose(merged[name].view(flow=True).value, h.view(flow=True).value, rtol=1e-12)


def test_rerun_skips_up_to_date_outputs_unless_forced(config, tmp_path):
    first = execute(RunOptions(config=config, output=tmp_path))
    assert first is not None
    stamp = (tmp_path / "zmumu.hist.zip").stat().st_mtime_ns
    assert execute(RunOptions(config=config, output=tmp_path)) is None
    (tmp_path / "data.hist.zip").unlink()
    again = execute(RunOptions(config=config, output=tmp_path))
    assert [s.sample.name for s in again.result.samples] == ["data"]
    assert (tmp_path / "zmumu.hist.zip").stat().st_mtime_ns == stamp
    forced = execute(RunOptions(config=config, output=tmp_path, force=True))
    assert len(forced.result.samples) == 2


def test_unreadable_file_is_an_error_or_skipped_on_request(config, tmp_path):
    folder = config.parent
    bad = folder / "zmumu_9.root"
    bad.write_bytes((folder / "zmumu_0.root").read_bytes()[:20000])  # truncated
    try:
        from framework.errors import InputError as Error

        with pytest.raises(Error, match=r"sample 'zmumu': cannot open .*zmumu_9.root(.|\n)*--skip-bad-files"):
            execute(RunOptions(config=config, output=tmp_path / "strict", force=True))
        assert not (tmp_path / "strict").exists()
        report = execute(RunOptions(config=config, output=tmp_path / "lenient", skip_bad_files=True, force=True))
        provenance = read_member(tmp_path / "lenient" / "zmumu.hist.zip", "provenance.json")
        assert provenance["skipped_files"] == [str(bad)] and len(provenance["files"]) == 3
        assert report.result.samples[0].events == 3 * 30000
    finally:
        bad.unlink()


def test_merge_of_a_job_folder_names_the_job_that_wrote_nothing(config, tmp_path):
    from framework.config.load import load_config
    from framework.execute.submit import write_jobs

    jobs = write_jobs(load_config(config), RunSelection(), "slurm", tmp_path / "jobs", tmp_path / "parts", "sample", 3)
    assert [job.samples for job in jobs.jobs] == [("zmumu",), ("data",)]
    proc = subprocess.run(["bash", str(jobs.folder / "run_job.sh"), "1"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    merged = subprocess.run(
        [sys.executable, "-m", "framework", "merge", str(jobs.folder)], capture_output=True, text=True, check=False
    )
    assert merged.returncode == 1
    assert "zmumu: missing part(s) 1" in merged.stdout  # no part of zmumu at all: known from the job folder only
    assert "job 0 (zmumu, part 1/1) wrote no complete output" in merged.stdout
    assert (tmp_path / "parts" / "data.hist.zip").exists() and not (tmp_path / "parts" / "zmumu.hist.zip").exists()


def _submit_descriptions(text: str) -> list[dict[str, str]]:
    """The settings each job of an HTCondor submit file gets: `key = value` lines hold until set again, and
    each `queue [N]` statement queues N jobs (default 1) with the settings so far."""
    settings: dict[str, str] = {}
    jobs: list[dict[str, str]] = []
    for line in text.splitlines():
        if line.split()[0] == "queue":
            jobs += [dict(settings)] * int(line.split()[1] if len(line.split()) > 1 else 1)
        else:
            key, _, value = line.partition(" = ")
            settings[key] = value
    return jobs


def _batch_config(config, name, inputs, batch):
    """The test config as `name`.yaml with its samples' files at `inputs` and a `batch:` block."""
    path = config.parent / f"{name}.yaml"
    text = config.read_text()
    if inputs:
        text = text.replace(f"{config.parent}/zmumu_*.root", f"{inputs}/zmumu.root")
        text = text.replace(f"{config.parent}/data_*.root", f"{inputs}/data.root")
    path.write_text(text + "batch:\n" + "".join(f"  {line}\n" for line in batch))
    return path


def test_htcondor_file_of_local_inputs_asks_for_resources_only(config, tmp_path):
    from framework.config.load import load_config
    from framework.execute.submit import write_jobs

    local = load_config(_batch_config(config, "local", None, ["threads: 2", "memory: 3GB", "disk: 1GB"]))
    jobs = write_jobs(local, RunSelection(), "htcondor", tmp_path / "jobs", tmp_path / "parts", "sample", 2)
    descriptions = _submit_descriptions(jobs.submit_file.read_text())
    assert len(descriptions) == 4 and all(d == descriptions[0] for d in descriptions)
    job = descriptions[0]
    assert job["request_cpus"] == "2" and job["request_memory"] == "3072" and job["request_disk"] == str(1024**2)
    assert job["max_retries"] == "3" and job["arguments"] == "$(ProcId)"
    for absent in ("use_x509userproxy", "+SingularityImage", "should_transfer_files", "+MaxRuntime"):
        assert absent not in job  # a local file needs no proxy; site attributes come only from the config


def test_htcondor_file_of_remote_inputs_carries_proxy_container_transfers_and_site_lines(config, tmp_path):
    from framework.config.load import load_config
    from framework.execute.submit import write_jobs

    image = "/cvmfs/unpacked.cern.ch/registry.hub.docker.com/library/almalinux:9"
    site = ["+MaxRuntime = 7200", '+JobFlavour = "longlunch"', '+AccountingGroup = "group_u_CMS.u_zh"']
    batch = [f"container: {image}", "shared_filesystem: false", "max_retries: 5", f"directives: {site!r}"]
    remote = load_config(_batch_config(config, "remote", "root://eos.example.org//store/user/x", batch))
    out = tmp_path / "parts"
    jobs = write_jobs(remote, RunSelection(), "htcondor", tmp_path / "jobs", out, "sample", 2)
    descriptions = _submit_descriptions(jobs.submit_file.read_text())
    assert len(descriptions) == 2  # one file per sample: one job each
    for job, sample in zip(descriptions, ("zmumu", "data"), strict=True):
        assert job["use_x509userproxy"] == "true" and job["+SingularityImage"] == f'"{image}"'
        assert job["max_retries"] == "5" and job["arguments"] == "$(ProcId) ."  # written in the scratch folder
        assert job["+MaxRuntime"] == "7200" and job["+JobFlavour"] == '"longlunch"'
        assert job["+AccountingGroup"] == '"group_u_CMS.u_zh"'
        assert job["should_transfer_files"] == "YES" and job["when_to_transfer_output"] == "ON_EXIT"
        part = f"{sample}.part-1-of-1.hist.zip"
        assert job["transfer_output_files"] == part
        assert job["transfer_output_remaps"] == f'"{part} = {out / part}"'
    assert out.is_dir()  # HTCondor copies into it, it does not make it


def test_job_without_shared_filesystem_writes_into_the_folder_it_is_given(config, tmp_path):
    from framework.config.load import load_config
    from framework.execute.submit import write_jobs

    loaded = load_config(_batch_config(config, "scratch", None, ["shared_filesystem: false"]))
    jobs = write_jobs(loaded, RunSelection(samples=("data",)), "htcondor", tmp_path / "jobs", tmp_path / "parts")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = subprocess.run(
        ["bash", str(jobs.folder / "run_job.sh"), "0", "."], cwd=scratch, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (scratch / "data.part-1-of-1.hist.zip").exists() and not list((tmp_path / "parts").iterdir())


def test_slurm_file_keeps_its_resources_and_adds_the_config_directives(config, tmp_path):
    from framework.config.load import load_config
    from framework.execute.submit import write_jobs

    loaded = load_config(_batch_config(config, "slurm", None, ["threads: 4", "directives: ['--qos=short', '-A cms']"]))
    jobs = write_jobs(loaded, RunSelection(), "slurm", tmp_path / "jobs", tmp_path / "parts", "sample", 2)
    sbatch = [ln for ln in jobs.submit_file.read_text().splitlines() if ln.startswith("#SBATCH")]
    for line in ("--array=0-3", "--cpus-per-task=4", "--mem=2048M", "--time=120", "--requeue", "--qos=short", "-A cms"):
        assert f"#SBATCH {line}" in sbatch


def test_skim_jobs_run_locally_list_every_sample_and_are_complete(config, tmp_path):
    """`submit --skim`: one job per sample and file chunk running `run-analysis skim --part I/N`; the jobs write
    the skim folder's samples.yaml; a job is done when its skim file and its record for its part are there."""
    from framework.app.cli.merge import main as merge_main
    from framework.config.load import load_config
    from framework.errors import ConfigError
    from framework.execute.submit import JOBS_FILE, KINDS, JobSet, job_states, write_jobs
    from framework.output.skim import SAMPLES_FILE, record_path

    text = config.read_text().replace(f"{config.parent}/data_*.root", f"{config.parent}/data_0.root")
    skimmed = config.parent / "skim_jobs.yaml"
    skimmed.write_text(text + "skim:\n  selection: [one_muon]\n  keep: [GoodMuon, MET_pt, genWeight]\n")
    loaded, skims = load_config(skimmed), tmp_path / "skims"
    with pytest.raises(ConfigError, match="the configuration has no 'skim:' block"):
        write_jobs(load_config(config), RunSelection(), "slurm", tmp_path / "x", skims, kind=KINDS["skim"])
    with pytest.raises(InputError, match="one job set per sample, not per era"):
        write_jobs(loaded, RunSelection(), "slurm", tmp_path / "x", skims, "era", kind=KINDS["skim"])
    assert not (tmp_path / "x").exists()
    selection = RunSelection(systematics="none")
    jobs = write_jobs(loaded, selection, "slurm", tmp_path / "jobs", skims, "sample", 2, KINDS["skim"])
    assert [(job.samples, job.part) for job in jobs.jobs] == [
        (("zmumu",), (1, 2)),
        (("zmumu",), (2, 2)),
        (("data",), (1, 1)),
    ]
    assert json.loads((jobs.folder / JOBS_FILE).read_text())["kind"] == "skim"
    assert all(c[1] == "skim" and "--progress-file" not in c for c in jobs.commands)
    run_jobs_at_once(jobs.folder, len(jobs.commands))  # their samples YAML rewritten under a lock
    listed = YAML(typ="safe").load((skims / SAMPLES_FILE).read_text())["samples"]
    assert listed["zmumu"]["files"] == ["zmumu.part-1-of-2.root", "zmumu.part-2-of-2.root"]
    assert listed["data"]["files"] == ["data.part-1-of-1.root"]
    loaded_jobs = JobSet.load(jobs.folder)
    assert loaded_jobs.kind is KINDS["skim"]
    assert all(loaded_jobs.is_complete(k) for k in range(3))
    assert [s.state.value for s in job_states(loaded_jobs)] == ["done"] * 3
    with pytest.raises(InputError, match="job folder of skim jobs: their outputs are not merged"):
        merge_main([str(jobs.folder)])
    record_path(skims, "data.part-1-of-1.root").unlink()
    assert [loaded_jobs.is_complete(k) for k in range(3)] == [True, True, False]
    assert job_states(loaded_jobs)[2].state.value != "done"
