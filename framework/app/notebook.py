"""The framework from Python and Jupyter: load or build a configuration, look at it and its plan,
run it in the background with live progress, and get the histograms as `hist.Hist`.

    from framework.app.notebook import Analysis
    analysis = Analysis.from_yaml("analyses/demo/config.yaml")
    analysis                                  # samples, cuts, histograms, systematics as tables
    run = analysis.run("OUT")                 # a background process; the notebook stays usable
    run.show()                                # live: stage, events, rate, time left
    results = run.result()                    # waits; {"DY": {"ht": Hist, ...}, ...}
    results["ttbar"]["ht"][{"systematic": "jesUp", "nbtag": sum}].project("HT").plot()
    run.plot("ht", slices={"channel": "ljets", "nbtag": 2}, rebin=5)   # the stacked plot, a matplotlib figure
    fit = analysis.fit("OUT")                 # with 'model:': mu, significance, limits, pulls (FitResult)

A run is a `run-analysis` command executed in a warm worker process (`framework.app.worker`), so
a crash or a cancel never takes the kernel with it, its log is kept line by line with a level,
and a second run reuses what the first one started: ROOT, the compiled steps, the inspected
inputs (as `run-analysis --watch` does). A cancelled or crashed worker is replaced.
"""

from __future__ import annotations

import atexit
import html
import json
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from framework.app.fit_result import FitResult
from framework.app.worker import Worker, WorkerDied
from framework.config.load import LoadedConfig, load_config
from framework.errors import ConfigError, FrameworkError
from framework.present.results import load_histograms

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
# ROOT's C++ messages reach the run's output as printed lines that start with their severity
ROOT_SEVERITIES = {"Warning": "WARNING", "Error": "ERROR", "SysError": "ERROR", "Break": "ERROR", "Fatal": "CRITICAL"}
WORKER_STOP_SECONDS = 5.0  # at exit, how long a warm worker may take to end before it is killed


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left'>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return f"<h4>{html.escape(title)}</h4><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass
class Analysis:
    """A validated configuration (`config`), from a YAML file or from a Python dict."""

    config: LoadedConfig

    @classmethod
    def from_yaml(cls, path: str | Path) -> Analysis:
        return cls(load_config(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: str | Path = ".") -> Analysis:
        """Build from a dict (as the YAML would read); relative paths are relative to `folder`.

        The dict is written as YAML in `folder` (a hidden file), so error messages name a line."""
        from ruamel.yaml import YAML

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".analysis-", suffix=".yaml", dir=folder)
        with open(fd, "w") as stream:
            YAML().dump(data, stream)
        return cls.from_yaml(name)

    @property
    def path(self) -> Path:
        return self.config.path

    def to_dict(self) -> dict[str, Any]:
        return self.config.spec.model_dump(by_alias=True, exclude_defaults=True)

    def modified(self, **changes: Any) -> Analysis:
        """A copy with top-level keys replaced, e.g. `analysis.modified(histograms={...})`. Its YAML
        is written to a temporary folder, never beside the original (the copy's paths are absolute;
        give absolute paths in `changes` too)."""
        return Analysis.from_dict({**self._source_dict(), **changes}, tempfile.mkdtemp(prefix="rdf-analysis-"))

    def _source_dict(self) -> dict[str, Any]:
        """The merged configuration; paths made absolute, since each was relative to its own YAML file."""
        data = self.config.spec.model_dump(by_alias=True, exclude_defaults=True, exclude={"include"})

        def absolute(path: str, *key: str | int) -> str:
            if "://" in path or Path(path).is_absolute():
                return path
            return str((self.config.source.file_of(key).parent / path).resolve())

        for name, sample in data.get("samples", {}).items():
            sample["files"] = [absolute(f, "samples", name, "files", i) for i, f in enumerate(sample["files"])]
        data["cpp"] = [absolute(f, "cpp", i) for i, f in enumerate(data.get("cpp", []))]
        for name, syst in data.get("systematics", {}).items():
            if "file" in syst:
                syst["file"] = absolute(syst["file"], "systematics", name, "file")
        return data

    def plan(self, samples: tuple[str, ...] = (), systematics: str = "all", max_events: int | None = None) -> Any:
        """The plan (plain data: `print(plan.describe())`, `plan.to_json()`); reads the inputs' columns."""
        from framework.execute.pipeline import RunOptions, prepare
        from framework.plan.model import RunSelection

        options = RunOptions(config=self.path, selection=RunSelection(samples, (), systematics, max_events))
        plan, _ = prepare(options, config=self.config)
        return plan

    def run(
        self,
        output: str | Path,
        threads: int = 2,
        executor: Literal["threads", "dask"] = "threads",
        samples: tuple[str, ...] = (),
        systematics: str = "all",
        max_events: int | None = None,
        force: bool = True,
        wait: bool = False,
        client: Any = None,
    ) -> Run:
        """Start the run in a warm worker process; returns its handle (`wait=True`: when it has finished).
        `client`: a `dask.distributed.Client` you made (a facility's cluster, a `LocalCluster`), or its
        scheduler's address; the run's tasks go to its workers (executor "dask" implied), and it stays open."""
        output = Path(output)
        output.mkdir(parents=True, exist_ok=True)
        progress = output / ".progress.json"
        progress.unlink(missing_ok=True)
        command = [
            str(self.path),
            "-o",
            str(output),
            "-j",
            str(threads),
            "--systematics",
            systematics,
            "--progress-file",
            str(progress),
            "--no-progress",
        ]
        if client is not None:
            address = client if isinstance(client, str) else client.scheduler.address
            command += ["--executor", "dask", "--scheduler", address]
        elif executor == "dask":
            command += ["--executor", "dask", "--workers", str(threads)]
        if samples:
            command += ["--samples", *samples]
        if max_events is not None:
            command += ["--max-events", str(max_events)]
        if force:
            command.append("--force")
        run = Run(command, output, progress, config=self.config)
        if wait:
            run.wait()
        return run

    def plot(
        self,
        run_output: str | Path,
        histogram: str,
        *,
        axis: str | None = None,
        slices: dict[str, Any] | None = None,
        rebin: int | None = None,
        log: bool = False,
        xlabel: str | None = None,
        ylabel: str | None = None,
        signal: dict[str, Any] | None = None,
    ) -> Any:
        """The stacked plot of a run's outputs that a `plots:` entry with these keys makes (`run-analysis plot`):
        simulation stacked by process, data, uncertainty bands, ratio, in the configuration's style. Returns
        the matplotlib figure (Jupyter shows it; `fig.savefig("ht.pdf")`). One figure: `slices` takes values,
        not 'each' (loop over them). `signal`: as the key of a plot, e.g. {"processes": ["ttH"], "stack": False,
        "scale": 10}; default: the configuration's `style.signal`."""
        from framework.config.schema.presentation import PlotSpec
        from framework.present.commands import prepare_presentation
        from framework.present.plotting import draw, plot_data
        from framework.present.views import check_label, plot_views

        arguments = {"histogram": histogram, "axis": axis, "slices": slices, "rebin": rebin, "log": log}
        arguments |= {"xlabel": xlabel, "ylabel": ylabel, "signal": signal}
        spec = _validated(PlotSpec, {k: v for k, v in arguments.items() if v is not None})
        for label in (xlabel, ylabel):
            if label:
                check_label(label, None)
        prepared = prepare_presentation(self.config, Path(run_output))
        views = plot_views(self.config, histogram, spec, lambda *keys: None)
        if len(views) != 1:
            each = next(name for name, value in spec.slices.items() if value == "each")
            raise ConfigError(
                f"slices={{{each!r}: 'each'}} makes {len(views)} plots; plot() draws one",
                hint=f"give one value of {each!r} per call, in a loop",
            )
        return draw(plot_data(prepared.outputs, prepared.presentation, views[0]), self.config.spec.style)

    def fit(self, run_output: str | Path, output: str | Path | None = None) -> FitResult:
        """Fit the model under 'model:' to a run's outputs, as `run-analysis fit` does, in this process
        (pyhf, no event loop); `output/fit.json` (default: `run_output/fit`)."""
        from framework.stats.commands import make_fit

        run_output = Path(run_output)
        folder = run_output / "fit" if output is None else Path(output)
        return FitResult.from_dict(make_fit(self.config, run_output, folder), folder)

    def _repr_html_(self) -> str:
        spec = self.config.spec
        samples = [
            [n, s.process or n, "data" if s.is_data else "simulation", s.era or "", s.xsec or "", len(s.files)]
            for n, s in spec.samples.items()
        ]
        cuts = [[c.name, c.cut] for c in spec.selection]
        histograms = [
            [
                n,
                " x ".join(a if isinstance(a, str) else (a.name or a.expr) for a in h.axes) + " x systematic",
                h.where or "",
            ]
            for n, h in spec.histograms.items()
        ]
        systematics = [
            [n, s.kind, s.group or "", ", ".join(s.applies_to.samples) if s.applies_to else "all"]
            for n, s in spec.systematics.items()
        ]
        return (
            f"<div><b>{html.escape(spec.analysis)}</b> <code>{html.escape(str(self.path))}</code>"
            + _table("samples", ["name", "process", "kind", "era", "xsec [pb]", "files"], samples)
            + _table("selection", ["cut", "expression"], cuts)
            + _table("histograms", ["name", "axes", "where"], histograms)
            + _table("systematics", ["name", "kind", "group", "applies to"], systematics)
            + "</div>"
        )

    def __repr__(self) -> str:
        spec = self.config.spec
        return (
            f"Analysis({spec.analysis!r}: {len(spec.samples)} samples, {len(spec.selection)} cuts, "
            f"{len(spec.histograms)} histograms, {len(spec.systematics)} systematics)"
        )


def _validated(model: type[Any], arguments: dict[str, Any]) -> Any:
    """`model` made from a method's arguments; a wrong one is a ConfigError naming the argument."""
    import pydantic

    try:
        return model.model_validate(arguments)
    except pydantic.ValidationError as err:
        problems = [f"argument {'.'.join(str(k) for k in e['loc'])}: {e['msg']}" for e in err.errors()]
        raise ConfigError("; ".join(problems)) from None


def _printed_level(line: str) -> str:
    """The level of a line the run printed rather than logged: one of ROOT's C++ messages
    ("Error in <TFile::Open>: ...") has the severity it starts with; the run's results are INFO."""
    severity, found, _ = line.partition(" in <")
    return ROOT_SEVERITIES.get(severity, "INFO") if found else "INFO"


_idle: list[Worker] = []  # warm workers waiting for the next run of this kernel
_idle_lock = threading.Lock()


@atexit.register
def _stop_idle_workers() -> None:
    """End the warm workers at exit, rather than leave their processes running behind the kernel."""
    with _idle_lock:
        workers = list(_idle)
        _idle.clear()
    for worker in workers:
        worker.stop(WORKER_STOP_SECONDS)


def _take_worker() -> Worker:
    with _idle_lock:
        while _idle:
            worker = _idle.pop()
            if worker.alive:
                return worker
    return Worker()


def _give_back(worker: Worker) -> None:
    if worker.alive:
        with _idle_lock:
            _idle.append(worker)


@dataclass
class Run:
    """A `run-analysis` command in a worker: `status()`, `progress()`, `show()`, `wait()`, `result()`,
    `cancel()`, `log()`."""

    command: list[str]  # run-analysis arguments
    output: Path
    progress_file: Path
    started: float = field(default_factory=time.time)
    lines: list[tuple[str, str]] = field(default_factory=list)  # (level, text)
    config: LoadedConfig | None = field(default=None, repr=False)  # of the analysis run (default: read again)

    def __post_init__(self) -> None:
        self._cancelled = False
        self._code: int | None = None
        self._worker = _take_worker()
        self._thread = threading.Thread(target=self._execute, daemon=True)
        self._thread.start()

    def _execute(self) -> None:
        try:
            self._code = self._worker.run(self.command, self._keep)
        except WorkerDied as err:
            if not self._cancelled:
                self.lines.append(("ERROR", f"error: {err}"))
            self._code = 1
        if not self._cancelled:
            _give_back(self._worker)

    def _keep(self, line: str, level: str | None) -> None:
        if line:
            self.lines.append((level or _printed_level(line), line))

    def status(self) -> Literal["running", "done", "failed", "cancelled"]:
        if self._cancelled:
            return "cancelled"
        if self._thread.is_alive():
            return "running"
        return "done" if self._code == 0 else "failed"

    def progress(self) -> dict[str, Any]:
        """Stage, events done and expected, rate (events/s) and estimated seconds left."""
        try:
            state = json.loads(self.progress_file.read_text())
        except (OSError, ValueError):
            state = {"stage": "starting", "events": 0, "total": 0, "seconds": 0.0}
        status = self.status()
        if status != "running":
            state["stage"] = status
        seconds = float(state.get("seconds") or 0.0)
        events, total = int(state.get("events") or 0), int(state.get("total") or 0)
        state["rate"] = events / seconds if seconds > 0 else 0.0
        state["left_seconds"] = (total - events) / state["rate"] if state["rate"] > 0 and total > events else 0.0
        state["elapsed"] = time.time() - self.started
        return state

    def _progress_html(self) -> str:
        p = self.progress()
        total = p.get("total") or 0
        fraction = min(p["events"] / total, 1.0) if total else (1.0 if p["stage"] == "done" else 0.0)
        return (
            f"<div><b>{html.escape(p['stage'])}</b> &mdash; {p['events']:,} / {total:,} events, "
            f"{p['rate']:,.0f} events/s, {p['left_seconds']:.0f} s left, {p['elapsed']:.0f} s elapsed"
            f"<div style='background:#eee;width:300px;height:8px'><div style='background:#5790fc;height:8px;"
            f"width:{300 * fraction:.0f}px'></div></div></div>"
        )

    def show(self, every: float = 0.5) -> None:
        """A live progress display in Jupyter (updated from a thread); plain text elsewhere."""
        get_ipython: Callable[[], Any] | None
        try:
            from IPython import get_ipython
            from IPython.display import HTML, display
        except ImportError:
            get_ipython = None
        if get_ipython is None or get_ipython() is None:
            p = self.progress()
            print(f"{p['stage']}: {p['events']} / {p['total']} events, {p['rate']:.0f} events/s")
            return
        handle = display(HTML(self._progress_html()), display_id=True)

        def update() -> None:
            while self.status() == "running":
                handle.update(HTML(self._progress_html()))
                time.sleep(every)
            handle.update(HTML(self._progress_html()))

        threading.Thread(target=update, daemon=True).start()

    def wait(self, timeout: float | None = None) -> str:
        self._thread.join(timeout)
        return self.status()

    def _finished(self) -> None:
        """Wait; an error with the run's error lines unless it succeeded."""
        status = self.wait()
        if status != "done":
            errors = "\n".join(t for level, t in self.lines if level == "ERROR") or "\n".join(
                t for _, t in self.lines[-5:]
            )
            raise FrameworkError(f"the run {status}:\n{errors}")

    def result(self, by: Literal["process", "sample"] = "process") -> dict[str, dict[str, Any]]:
        """Wait, then the histograms of the run (as `framework.present.results.load_histograms`)."""
        self._finished()
        return load_histograms(self.output, by=by)

    def plot(self, histogram: str, **options: Any) -> Any:
        """Wait, then the stacked plot of `histogram` (a matplotlib figure): `Analysis.plot`'s arguments, e.g.
        `run.plot("ht", slices={"channel": "ljets", "nbtag": 2}, rebin=5, log=True)`."""
        self._finished()
        analysis = Analysis(self.config) if self.config is not None else Analysis.from_yaml(self.command[0])
        return analysis.plot(self.output, histogram, **options)

    def cancel(self) -> None:
        """Stop the run (its worker process ends; outputs are only ever written whole)."""
        if self._thread.is_alive():
            self._cancelled = True
            self._worker.stop()
            self._thread.join(10)

    def log(self, level: str = "INFO") -> list[str]:
        """The run's output lines at `level` or above (DEBUG, INFO, WARNING, ERROR)."""
        threshold = LEVELS[level.upper()]
        return [text for lvl, text in self.lines if LEVELS[lvl] >= threshold]

    def _repr_html_(self) -> str:
        return self._progress_html()

    def __repr__(self) -> str:
        p = self.progress()
        return f"Run({p['stage']}, {p['events']}/{p['total']} events, output {self.output})"
