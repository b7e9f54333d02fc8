"""Property-based: any edit of the demo's configuration or of a samples file either works or is a
clean FrameworkError (never another exception), and `samples update` never leaves a file it
changed invalid or changed elsewhere than in its computed fields."""

from __future__ import annotations

import string

import pytest
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from framework.config.load import load_config
from framework.errors import FrameworkError
from framework.inputs.files import FileFacts
from framework.inputs.model import SampleInputs
from framework.plan.make import make_plan
from framework.plan.model import RunSelection
from framework.present.views import make_presentation

DEMO = (REPO / "analyses" / "demo" / "config.yaml").read_text().replace("../../", f"{REPO}/")
CHARACTERS = st.sampled_from(
    list(string.printable) + ["\x00", "\x07", "\x1b", "é", "µ", "\ufeff", "&", "*", "!!", "<<"]
)


@st.composite
def edits(draw: st.DrawFn, text: str) -> str:
    """The text with one to three edits: characters inserted, deleted or replaced, lines
    deleted, duplicated or swapped."""
    for _ in range(draw(st.integers(1, 3))):
        lines = text.splitlines(keepends=True)
        kind = draw(st.sampled_from(["insert", "delete", "replace", "drop_line", "copy_line", "swap_lines"]))
        if kind in ("insert", "delete", "replace") or len(lines) < 2:
            at = draw(st.integers(0, max(len(text) - 1, 0)))
            piece = draw(CHARACTERS) if kind != "delete" else ""
            text = text[:at] + piece + text[at + (kind != "insert") :]
        else:
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if kind == "drop_line":
                del lines[i]
            elif kind == "copy_line":
                lines.insert(j, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            text = "".join(lines)
    return text


@pytest.fixture(scope="module")
def demo_inputs(generated) -> dict[str, SampleInputs]:
    """The demo samples' inputs as the input stage would find them (from a generated file)."""
    facts = FileFacts(str(generated["ttbar"]), "Events")
    entries, fmt = facts.opened("ttbar", None, 0, None)  # type: ignore[arg-type]
    columns = facts.columns()
    found = SampleInputs(
        (str(generated["ttbar"]),),
        (entries,),
        frozenset(columns),
        fmt,
        columns,
        facts.array_sizes(["LHEScaleWeight", "PSWeight"]),
    )
    return {name: found for name in ("zmumu", "ttbar", "data")}


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=edits(DEMO))
def test_an_edited_config_works_or_says_why(text, tmp_path, demo_inputs):
    path = tmp_path / "config.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        config = load_config(path)
        make_presentation(config)
        inputs = {n: demo_inputs.get(n, next(iter(demo_inputs.values()))) for n in config.spec.samples}
        make_plan(config, inputs, RunSelection(), lambda name: name in ("kin",))
    except FrameworkError as err:
        assert str(err) and "Traceback" not in str(err)


SAMPLES = """# samples of the fuzzed file
eras:
  "2016": {lumi: 10.0}   # /pb
samples:
  zmumu:
    files: [FILE]
    xsec: 2000.0          # pb
    era: "2016"
  data:
    files: [FILE]
    is_data: true
"""


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=edits(SAMPLES))
def test_samples_update_never_corrupts_a_file(text, tmp_path, generated, monkeypatch):
    from framework.app import samples

    monkeypatch.setattr(samples, "_scan", lambda *args: (100, 50.0, 30.0))
    monkeypatch.setattr(samples, "_scan_splits", lambda *args: {})
    path = tmp_path / "samples.yaml"
    original = text.replace("FILE", str(generated["ttbar"])).encode("utf-8", "surrogatepass")
    path.write_bytes(original)
    try:
        report = samples.update_samples_file(path)
    except FrameworkError:
        assert path.read_bytes() == original  # refused: untouched
        return
    if not report.changed:
        assert path.read_bytes() == original
        return
    before = YAML(typ="safe").load(original.decode("utf-8", "surrogatepass"))
    after = YAML(typ="safe").load(path.read_text())
    assert samples._same_but_computed(before, after)
