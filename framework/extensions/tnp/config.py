"""The `tnp:` section, checked and compiled into ordinary defines and one histogram.

Every tag-probe pair of an event gives, per tag definition and per efficiency whose
denominator its probe passes, one entry of the histogram `tnp`:

    tag x efficiency x passed x <binning variables> x mass  (x systematic, as every histogram)

Each user expression becomes its own define, located at its line in the `tnp:` section,
so an unknown column or C++ that does not compile is reported there. The C++ they call
(`tnp.hxx`) joins the `cpp:` headers, so it is declared, and compiled steps include it, only
for an analysis with a `tnp:` section.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from framework.config.load import LoadedConfig
from framework.config.schema.core import AxisSpec, HistogramSpec
from framework.config.yamlsource import YamlPath
from framework.errors import ConfigError, Location, did_you_mean
from framework.extensions.tnp.schema import BACKGROUND_MODELS, SIGNAL_MODELS, TnpSpec

TNP_HISTOGRAM = "tnp"
PREFIX = "tnp_"
TNP_HEADER = Path(__file__).parent / "tnp.hxx"


def check_tnp(config: LoadedConfig, tnp: TnpSpec) -> None:
    def place(*path: str | int) -> Location:
        return config.locate("tnp", *path)

    for name, eff in tnp.efficiencies.items():
        for key in ("numerator", "denominator"):
            for i, selection in enumerate(getattr(eff, key)):
                if selection not in tnp.selections:
                    raise ConfigError(
                        f"efficiency {name!r}: {selection!r} is not a probe selection",
                        place("efficiencies", name, key, i),
                        did_you_mean(selection, tnp.selections) or f"selections: {', '.join(tnp.selections)}",
                    )
        missing = [s for s in eff.denominator if s not in eff.numerator]
        if missing:
            raise ConfigError(
                f"efficiency {name!r}: the numerator is not a subset of the denominator "
                f"(it lacks {', '.join(missing)})",
                place("efficiencies", name, "numerator"),
                "list every denominator selection in the numerator too: "
                f"{eff.denominator + [s for s in eff.numerator if s not in eff.denominator]}",
            )
    fits: list[tuple[tuple[str, ...], str | None, str | None, tuple[float, float] | None]]
    fits = [(("fit",), tnp.fit.signal, tnp.fit.background, tnp.fit.range)]
    fits += [(("systematics", n), a.signal, a.background, a.range) for n, a in tnp.systematics.items()]
    for path, signal, background, window in fits:
        for key, value, known in (("signal", signal, SIGNAL_MODELS), ("background", background, BACKGROUND_MODELS)):
            if value is not None and value not in known:
                raise ConfigError(
                    f"{key} model {value!r} does not exist",
                    place(*path, key),
                    did_you_mean(value, known) or f"{key} models: {', '.join(known)}",
                )
        if window is not None and not (tnp.mass[0] <= window[0] < window[1] <= tnp.mass[1]):
            raise ConfigError(
                f"fit range {list(window)} must be increasing and inside the mass window {list(tnp.mass)}",
                place(*path, "range"),
            )
    for name, alternative in tnp.systematics.items():
        if alternative.tag is not None and alternative.tag not in tnp.tag_variations:
            raise ConfigError(
                f"tag variation {alternative.tag!r} is not declared",
                place("systematics", name, "tag"),
                did_you_mean(alternative.tag, tnp.tag_variations) or "declare it under 'tag_variations'",
            )
    for name in config.spec.defines:
        if name.startswith(PREFIX):
            raise ConfigError(
                f"define names starting with {PREFIX!r} are reserved for tag and probe", config.locate("defines", name)
            )
    if TNP_HISTOGRAM in config.spec.histograms:
        raise ConfigError(
            f"histogram name {TNP_HISTOGRAM!r} is reserved for tag and probe",
            config.locate("histograms", TNP_HISTOGRAM),
        )


@dataclasses.dataclass
class _Defines:
    """The defines the `tnp:` section compiles into, each located at its place in the section."""

    config: LoadedConfig
    places: dict[YamlPath, Location]
    expressions: dict[str, str] = dataclasses.field(default_factory=dict)

    def __call__(self, name: str, expression: str, *path: str | int) -> str:
        self.expressions[PREFIX + name] = expression
        self.places[("defines", PREFIX + name)] = self.config.locate("tnp", *path)
        return PREFIX + name


def _define_entries(tnp: TnpSpec, define: _Defines) -> tuple[str, int]:
    """Defines the tag-probe entries of an event from the tags, probe, selections and binning
    variables; returns the entries' column and the number of tag definitions."""
    c = tnp.collection
    tags = [define("tag_0", f"fw::mask_and({tnp.tag})", "tag")]
    tags += [
        define(f"tag_{i + 1}", f"fw::mask_and({e})", "tag_variations", n)
        for i, (n, e) in enumerate(tnp.tag_variations.items())
    ]
    probe = define("probe", f"fw::mask_and({tnp.probe})", "probe")
    selections = {n: define(f"sel_{n}", f"fw::mask_and({e})", "selections", n) for n, e in tnp.selections.items()}
    variables = [define(f"var_{n}", b.expr, "binning", n, "expr") for n, b in tnp.binning.items()]

    def conjunction(names: list[str]) -> str:
        return f"fw::mask_and({', '.join(selections[n] for n in names)})" if names else probe

    numerators = ", ".join(conjunction(e.numerator) for e in tnp.efficiencies.values())
    denominators = ", ".join(conjunction(e.denominator) for e in tnp.efficiencies.values())
    low, high = tnp.mass
    entries = define(
        "entries",
        f"fw::tnp_entries({c}_pt, {c}_eta, {c}_phi, {c}_mass, {c}_charge, fw::masks({', '.join(tags)}), {probe}, "
        f"fw::masks({denominators}), fw::masks({numerators}), fw::values({', '.join(variables)}), {low}, {high}, "
        f"{'true' if tnp.opposite_charge else 'false'})",
    )
    return entries, len(tags)


def _axes(tnp: TnpSpec, define: _Defines, entries: str, n_tags: int) -> list[AxisSpec]:
    """The axes of the histogram `tnp`, each filled from a define of the entries' fields."""
    return [
        AxisSpec(expr=define("tag_index", f"{entries}.tag"), name="tag", integer=(0, n_tags), label="tag definition"),
        AxisSpec(
            expr=define("efficiency_index", f"{entries}.efficiency"),
            name="efficiency",
            integer=(0, len(tnp.efficiencies)),
            label="efficiency",
        ),
        AxisSpec(expr=define("passed", f"{entries}.passed"), name="passed", integer=(0, 2), label="probe passes"),
        *[
            AxisSpec(
                expr=define(f"value_{n}", f"{entries}.variables[{i}]", "binning", n),
                name=n,
                edges=b.edges,
                label=b.label or n,
            )
            for i, (n, b) in enumerate(tnp.binning.items())
        ],
        AxisSpec(
            expr=define("mass", f"{entries}.mass", "mass"),
            name="mass",
            bins=tnp.mass_bins,
            range=tnp.mass,
            label="tag-probe mass [GeV]",
        ),
    ]


def expand_tnp(config: LoadedConfig) -> LoadedConfig:
    """The configuration with the `tnp:` section turned into defines, the histogram `tnp` and the
    header `tnp.hxx`, each located in the section."""
    tnp = config.spec.tnp
    if tnp is None:
        return config
    check_tnp(config, tnp)
    define = _Defines(config, dict(config.source.places))
    entries, n_tags = _define_entries(tnp, define)
    axes = _axes(tnp, define, entries, n_tags)
    places = define.places
    places[("histograms", TNP_HISTOGRAM)] = config.locate("tnp")
    places[("cpp", len(config.spec.cpp))] = config.locate("tnp")
    spec = config.spec.model_copy(
        update={
            "defines": {**config.spec.defines, **define.expressions},
            "histograms": {**config.spec.histograms, TNP_HISTOGRAM: HistogramSpec(axes=axes)},
            "cpp": [*config.spec.cpp, str(TNP_HEADER)],
        }
    )
    return LoadedConfig(path=config.path, spec=spec, source=dataclasses.replace(config.source, places=places))
