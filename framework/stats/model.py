"""The statistical model as plain data, built from a run's output files alone: channels of binned
samples (nominal, MC variance, modifiers) and the data (observed, or Asimov where blinded or asked).

    ModelPlan (declare.py) + RunOutputs (present/results.py) -> StatModel -> datacard.py, workspace.py, fit.py

Systematic templates come from the `systematic` axis (indexed members as their envelope).
A systematic declared one-sided (only `<name>Up` in the outputs) gets the mirror image of its up
template as its down (`present.results.variation_templates`); the model lists them (`mirrored`)
and the datacard, HistFactory XML and fit result say so.
A variation whose up and down templates move the total yield the same way (one-sided) is
symmetrised: the template that moves it more is kept, the other replaced by its mirror image
about the nominal (bins that move the same way in a two-sided variation are left as they are).
A sample with no events in a channel carries no modifier there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from framework.errors import ConfigError, InputError
from framework.present.project import Projection, blinded, project
from framework.present.results import DATA, RunOutputs
from framework.present.views import Presentation
from framework.stats.declare import ChannelPlan, ModelPlan


@dataclass(frozen=True)
class NormSys:
    """Yield x up**theta (theta >= 0) or down**(-theta): combine's lnN (down/up), pyhf's normsys (hi, lo)."""

    name: str
    up: float
    down: float


@dataclass(frozen=True)
class ShapeSys:
    """The varied templates (normalisation included): combine's shape, pyhf's normsys + histosys."""

    name: str
    up: np.ndarray
    down: np.ndarray


@dataclass(frozen=True)
class Sample:
    name: str
    signal: bool
    nominal: np.ndarray
    variance: np.ndarray  # of the simulation: sum of squared weights
    norms: tuple[NormSys, ...]
    shapes: tuple[ShapeSys, ...]

    @property
    def rate(self) -> float:
        return float(self.nominal.sum())


@dataclass(frozen=True)
class Channel:
    name: str
    observable: str
    edges: np.ndarray
    samples: tuple[Sample, ...]
    data: np.ndarray
    asimov: bool  # data is the expected total (blinded, or asked for, or no data sample)
    label: str = ""  # the observable's axis label (with its unit), for plots


@dataclass(frozen=True)
class StatModel:
    channels: tuple[Channel, ...]
    signal: tuple[str, ...]
    background: tuple[str, ...]
    mc_stat: bool
    mirrored: tuple[str, ...] = ()  # one-sided systematics whose down template is the mirrored up

    @property
    def processes(self) -> tuple[str, ...]:
        return (*self.signal, *self.background)

    def without_systematics(self) -> StatModel:
        """The same channels with no nuisance parameter: statistics only."""
        channels = tuple(
            replace(c, samples=tuple(Sample(s.name, s.signal, s.nominal, s.variance, (), ()) for s in c.samples))
            for c in self.channels
        )
        return StatModel(channels, self.signal, self.background, False)

    def mirrored_note(self) -> str:
        """What the exports say about one-sided systematics ('' without any)."""
        if not self.mirrored:
            return ""
        return (
            f"one-sided systematics (only <name>Up in the run), their Down the mirror image 2 nominal - Up "
            f"(not below 0): {', '.join(self.mirrored)}"
        )


def symmetrise(nominal: np.ndarray, up: np.ndarray, down: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A one-sided variation (up and down move the total yield the same way, or one does not move it,
    to 1e-9): the template that moves it more is kept in its place, the other becomes its mirror
    image, 2 nominal - kept (not below 0)."""
    total = float(nominal.sum())
    du, dd = (float(t.sum()) - total for t in (up, down))
    still = [abs(d) <= 1e-9 * abs(total) for d in (du, dd)]
    if (du * dd < 0 and not any(still)) or all(still):
        return up, down
    if abs(du) >= abs(dd):
        return up, np.maximum(2 * nominal - up, 0.0)
    return np.maximum(2 * nominal - down, 0.0), down


def _fitted(p: Projection, channel: ChannelPlan) -> Projection:
    """The fitted bins of the observable, merged by the channel's rebin."""
    import hist

    lo, hi = channel.bins
    edges = np.asarray(p.axes[0].edges)[lo : hi + 1]
    axis = hist.axis.Variable(edges, name=p.axes[0].name, label=p.axes[0].label)
    return Projection([axis], p.entries, p.values[lo:hi], p.variances[lo:hi]).rebinned(channel.rebin)


def _sample(p: Projection, process: str, plan: ModelPlan, channel: ChannelPlan, systematics: list[str]) -> Sample:
    nominal = p.nominal
    norms = [
        NormSys(n.name, n.up, n.down) for n in plan.norms if process in n.processes and channel.declared in n.channels
    ]
    shapes = []
    for name, (up, down) in p.templates(systematics).items():
        treatment = plan.treatments.get(name, "shape")
        if treatment == "drop" or (np.allclose(up, nominal, rtol=1e-12) and np.allclose(down, nominal, rtol=1e-12)):
            continue
        up, down = symmetrise(nominal, up, down)
        if treatment == "norm":
            total = nominal.sum()
            norms.append(NormSys(name, float(up.sum() / total), float(down.sum() / total)))
        else:
            shapes.append(ShapeSys(name, up, down))
    if nominal.sum() <= 0:
        norms, shapes = [], []
    return Sample(process, process in plan.signal, nominal, p.nominal_variance, tuple(norms), tuple(shapes))


def _check_background(channel: ChannelPlan, edges: np.ndarray, background: np.ndarray) -> None:
    empty = np.flatnonzero(background <= 0)
    if empty.size:
        i = int(empty[0])
        raise ConfigError(
            f"channel {channel.name!r}: bin {i} [{edges[i]:g}, {edges[i + 1]:g}] of {channel.axis!r} has zero total "
            f"background ({background[i]:g}); a likelihood fit cannot describe it"
            + (f" (and {empty.size - 1} more bins)" if empty.size > 1 else ""),
            channel.origin,
            "narrow the channel's 'range' to bins with background, or merge bins with 'rebin'",
        )


def _data(
    outputs: RunOutputs, presentation: Presentation, channel: ChannelPlan, expected: np.ndarray, asimov: bool
) -> tuple[np.ndarray, bool]:
    """The channel's data, or the expected total (Asimov) where blinded, asked for, or without data."""
    if asimov or not outputs.has_data():
        return expected, True
    h = outputs.histogram(DATA, channel.histogram)
    lo, hi = channel.bins
    if blinded(h, [channel.axis], channel.cuts, presentation.blind)[lo:hi].any():
        return expected, True
    return _fitted(project(h, [channel.axis], channel.cuts), channel).nominal, False


def build_model(outputs: RunOutputs, presentation: Presentation, plan: ModelPlan) -> StatModel:
    """Channels of samples from the outputs; refuses a bin without background."""
    systematics = outputs.systematics
    missing = [n for n, t in plan.treatments.items() if t != "drop" and n not in systematics]
    if missing:
        raise InputError(
            f"the outputs in {outputs.folder} have no variations of {', '.join(missing)}",
            plan.origin,
            "rerun the analysis with every systematic (--systematics all), or 'drop' them in the model",
        )
    channels = []
    for channel in plan.channels:
        samples = []
        for process in (*plan.signal, *plan.background):
            p = _fitted(project(outputs.histogram(process, channel.histogram), [channel.axis], channel.cuts), channel)
            samples.append(_sample(p, process, plan, channel, systematics))
        edges = np.asarray(p.axes[0].edges, dtype=float)
        _check_background(channel, edges, np.sum([s.nominal for s in samples if not s.signal], axis=0))
        expected = np.sum([s.nominal for s in samples], axis=0)
        data, asimov = _data(outputs, presentation, channel, np.asarray(expected), plan.asimov)
        label = p.axes[0].label or channel.axis
        channels.append(Channel(channel.name, channel.axis, edges, tuple(samples), np.asarray(data), asimov, label))
    one_sided = next(iter(outputs.samples.values())).provenance.one_sided
    shaped = {n.name for c in channels for s in c.samples for n in s.norms} | {
        h.name for c in channels for s in c.samples for h in s.shapes
    }
    mirrored = tuple(n for n in one_sided if n in shaped)
    return StatModel(tuple(channels), plan.signal, plan.background, plan.mc_stat, mirrored)
