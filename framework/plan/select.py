"""Plan stage, selection: which samples and systematics a run takes, and what it reads of each sample."""

from __future__ import annotations

import fnmatch

from framework.config.load import LoadedConfig
from framework.errors import ConfigError, did_you_mean
from framework.inputs.model import SampleInputs
from framework.plan.model import RunSelection
from framework.plan.systematics import declared_systematics


def select_samples(config: LoadedConfig, sel: RunSelection) -> list[str]:
    spec = config.spec
    names = list(spec.samples)
    for pattern in sel.samples:
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            raise ConfigError(
                f"--samples {pattern!r} matches no sample",
                hint=did_you_mean(pattern, names) or f"samples: {', '.join(names)}",
            )
    eras = {s.era for s in spec.samples.values()}
    for era in sel.eras:
        if era not in eras:
            raise ConfigError(f"--eras {era!r} matches no sample's era", hint=did_you_mean(era, map(str, eras)))
    chosen = [
        n
        for n in names
        if (not sel.samples or any(fnmatch.fnmatchcase(n, p) for p in sel.samples))
        and (not sel.eras or spec.samples[n].era in sel.eras)
    ]
    if not chosen:
        raise ConfigError("the sample and era selection leaves no sample to run on")
    return chosen


def select_systematics(config: LoadedConfig, choice: str) -> list[str]:
    """`none`, `all`, or a comma-separated list of names, groups and glob patterns (`jes*`); the
    members of many-source sets by their own names, or by their set's group."""
    if choice == "none":
        return []
    declared = declared_systematics(config)
    names = list(declared)
    if choice == "all":
        return names
    groups = {n: m.group for n, m in declared.items()}
    chosen: list[str] = []
    for pattern in (p.strip() for p in choice.split(",") if p.strip()):
        matched = [
            n
            for n in names
            if fnmatch.fnmatchcase(n, pattern) or ((group := groups[n]) and fnmatch.fnmatchcase(group, pattern))
        ]
        if not matched:
            known = names + sorted({g for g in groups.values() if g})
            raise ConfigError(
                f"--systematics {pattern!r} matches no declared systematic",
                hint=did_you_mean(pattern, known) or (f"declared: {', '.join(known)}" if known else "none declared"),
            )
        chosen.extend(m for m in matched if m not in chosen)
    return [n for n in names if n in chosen]


def reading(
    found: SampleInputs, part: tuple[int, int] | None, max_events: int | None
) -> tuple[tuple[str, ...], tuple[int, ...], tuple[tuple[int, int], ...] | None, int | None]:
    """What a run reads of a sample: the files, their entries, the [begin, end) entries of each
    file when not all of them, and the --max-events limit when it cuts. A batch part `i/n` takes
    the i-th of n contiguous chunks of the files, or of the entries when there are fewer files
    than parts (RDataFrame reads a file's entry range at the cost of counting past the rest);
    --max-events then keeps the first entries of what the part reads."""
    kept = [(f, count, (0, count)) for f, count in zip(found.files, found.entries)]
    if part is not None:
        i, n = part
        if len(kept) >= n:
            kept = kept[(len(kept) * (i - 1)) // n : (len(kept) * i) // n]
        else:
            total = sum(found.entries)
            lo, hi = (total * (i - 1)) // n, (total * i) // n
            chunk, offset = [], 0
            for f, count, _ in kept:
                begin, end = max(lo - offset, 0), min(hi - offset, count)
                if begin < end:
                    chunk.append((f, count, (begin, end)))
                offset += count
            kept = chunk
    limit = None
    if max_events is not None and max_events < sum(end - begin for _, _, (begin, end) in kept):
        limit, left, cut = max_events, max_events, []
        for f, count, (begin, end) in kept:
            if left <= 0:
                break
            cut.append((f, count, (begin, min(end, begin + left))))
            left -= end - begin
        kept = cut
    whole = all(r == (0, count) for _, count, r in kept)
    return tuple(k[0] for k in kept), tuple(k[1] for k in kept), None if whole else tuple(k[2] for k in kept), limit
