"""`model:` checked against the configuration alone (histogram axes, category bins, processes,
systematics), so a bad model fails with its YAML line before an event loop. -> ModelPlan (plain data)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framework.config.load import LoadedConfig
from framework.config.schema.model import ModelChannelSpec, ModelSpec
from framework.config.schema.presentation import SliceValue
from framework.errors import ConfigError, Location, did_you_mean
from framework.plan.systematics import declared_systematics
from framework.present.views import (
    AxisCut,
    SignificanceView,
    _axes,
    _axis,
    _check_processes,
    _slices,
    _value_text,
    output_processes,
)

TREATMENTS = ("shape", "norm", "drop")


@dataclass(frozen=True)
class ChannelPlan:
    """One channel: the observable of a histogram, the bins summed on its other axes, the fitted bins."""

    name: str
    declared: str  # its key under model.channels (several channels with 'each')
    histogram: str
    axis: str
    cuts: tuple[AxisCut, ...]
    bins: tuple[int, int]  # first and one-past-last fitted bin of the observable
    rebin: int | None
    origin: Location


@dataclass(frozen=True)
class NormPlan:
    """A log-normal normalisation uncertainty: yield x up**theta (theta > 0) or down**-theta."""

    name: str
    up: float
    down: float
    processes: tuple[str, ...]
    channels: tuple[str, ...]  # declared channel names


@dataclass(frozen=True)
class ModelPlan:
    channels: tuple[ChannelPlan, ...]
    signal: tuple[str, ...]
    background: tuple[str, ...]
    norms: tuple[NormPlan, ...]
    treatments: dict[str, str]  # every systematic of the configuration -> shape, norm or drop
    mc_stat: bool
    asimov: bool
    origin: Location


def _fitted_bins(config: LoadedConfig, spec: ModelChannelSpec, edges: np.ndarray, path: tuple) -> tuple[int, int]:
    if spec.range is None:
        return 0, len(edges) - 1
    where = config.locate(*path, "range")
    low, high = spec.range
    found = [int(np.argmin(abs(edges - v))) for v in (low, high)]
    if not low < high or any(abs(edges[i] - v) > 1e-9 * max(1.0, abs(v)) for i, v in zip(found, (low, high))):
        raise ConfigError(
            f"range {[low, high]} must have low < high on bin edges of the observable",
            where,
            f"edges: {', '.join(f'{e:g}' for e in edges)}",
        )
    return found[0], found[1]


def _channels(config: LoadedConfig, model: ModelSpec) -> list[ChannelPlan]:
    found = []
    for declared, spec in model.channels.items():
        path = ("model", "channels", declared)
        axes = _axes(config, spec.histogram, config.locate(*path, "histogram"))
        if not axes:
            raise ConfigError(f"histogram {spec.histogram!r} has no axis to fit", config.locate(*path, "histogram"))
        drawn = spec.axis or next(iter(axes))
        axis = _axis(axes, drawn, spec.histogram, config.locate(*path, "axis"))
        if not axis.continuous:
            raise ConfigError(f"the observable {drawn!r} is a category axis", config.locate(*path, "axis"))
        bins = _fitted_bins(config, spec, np.asarray(axis.bin_edges(), dtype=float), path)
        if spec.rebin and (bins[1] - bins[0]) % spec.rebin:
            raise ConfigError(
                f"rebin {spec.rebin} does not divide the {bins[1] - bins[0]} fitted bins of {drawn!r}",
                config.locate(*path, "rebin"),
                "choose a divisor of the number of bins (in 'range')",
            )
        slices: dict[str, SliceValue] = dict(spec.slices)
        each = [n for n, v in slices.items() if v == "each"]
        for cuts in _slices(config, axes, spec.histogram, slices, [drawn], path):
            suffix = [_value_text(c.values[0]) for c in cuts if c.axis in each and c.values]
            suffix += [f"{c.range[0]:g}_{c.range[1]:g}" for c in cuts if c.axis in each and c.range]
            name = "_".join([declared, *suffix]).replace(".", "p").replace("-", "m")
            found.append(
                ChannelPlan(name, declared, spec.histogram, drawn, cuts, bins, spec.rebin, config.locate(*path))
            )
    return found


def _norms(config: LoadedConfig, model: ModelSpec, processes: list[str]) -> list[NormPlan]:
    found = []
    for name, spec in model.normalisations.items():
        path = ("model", "normalisations", name)
        value = spec.value
        down, up = (1.0 / value, value) if isinstance(value, float | int) else value
        if down <= 0 or up <= 0:
            raise ConfigError(f"lnN values must be positive, found {value!r}", config.locate(*path, "value"))
        _check_processes([(p, config.locate(*path, "processes", i)) for i, p in enumerate(spec.processes)], processes)
        for i, c in enumerate(spec.channels):
            if c not in model.channels:
                raise ConfigError(
                    f"the model has no channel {c!r}",
                    config.locate(*path, "channels", i),
                    did_you_mean(c, model.channels) or f"channels: {', '.join(model.channels)}",
                )
        if name in config.spec.systematics or name in declared_systematics(config):
            raise ConfigError(f"{name!r} is also a systematic of the configuration", config.locate(*path))
        found.append(
            NormPlan(
                name, float(up), float(down), tuple(spec.processes or processes), tuple(spec.channels or model.channels)
            )
        )
    return found


def _treatments(config: LoadedConfig, model: ModelSpec) -> dict[str, str]:
    """Every systematic (each member of a many-source set) -> its treatment: given by its own name,
    else by its set's name, else shape."""
    members = declared_systematics(config)
    known = list(dict.fromkeys([*config.spec.systematics, *members]))
    for name in model.systematics:
        if name not in known:
            raise ConfigError(
                f"systematic {name!r} is not declared under 'systematics'",
                config.locate("model", "systematics", name),
                did_you_mean(name, known) or f"systematics: {', '.join(known) or 'none'}",
            )
    return {
        name: model.systematics.get(name, model.systematics.get(member.declared, "shape"))
        for name, member in members.items()
    }


def make_model_plan(config: LoadedConfig) -> ModelPlan | None:
    """The checked model, or None without `model:`."""
    model = config.spec.model
    if model is None:
        return None
    processes = output_processes(config)
    if not model.signal:
        raise ConfigError(
            "the model has no signal process",
            config.locate("model"),
            f"add 'signal: [...]' with one or more of: {', '.join(processes)}",
        )
    _check_processes([(p, config.locate("model", "signal", i)) for i, p in enumerate(model.signal)], processes)
    background = [p for p in processes if p not in model.signal]
    if not background:
        raise ConfigError("every process is signal: the model has no background", config.locate("model", "signal"))
    return ModelPlan(
        channels=tuple(_channels(config, model)),
        signal=tuple(p for p in processes if p in model.signal),
        background=tuple(background),
        norms=tuple(_norms(config, model, processes)),
        treatments=_treatments(config, model),
        mc_stat=model.mc_stat,
        asimov=model.data == "asimov",
        origin=config.locate("model"),
    )


def significance_plans(config: LoadedConfig, views: list[SignificanceView]) -> list[ModelPlan]:
    """Each `significance:` window as a one-channel model: the systematics enter as under `model:` (shape
    without one), with the model's normalisation uncertainties that apply to every channel and its
    MC statistics setting."""
    model = make_model_plan(config)
    processes = output_processes(config)
    everywhere = set() if config.spec.model is None else set(config.spec.model.channels)
    global_norms = [n for n in model.norms if set(n.channels) == everywhere] if model else []
    found = []
    for view in views:
        channel = ChannelPlan(view.name, view.name, view.histogram, view.axis, view.cuts, view.bins, None, view.origin)
        found.append(
            ModelPlan(
                channels=(channel,),
                signal=tuple(p for p in processes if p in view.signal),
                background=tuple(p for p in processes if p not in view.signal),
                norms=tuple(NormPlan(n.name, n.up, n.down, n.processes, (view.name,)) for n in global_norms),
                treatments=model.treatments if model else {name: "shape" for name in declared_systematics(config)},
                mc_stat=model.mc_stat if model else True,
                asimov=False,
                origin=view.origin,
            )
        )
    return found
