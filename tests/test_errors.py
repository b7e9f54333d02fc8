"""Every bad input is reported with the YAML file, line and key, before any event is read.

Each file in bad_configs/ states the message (regex), line and key it must produce.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from framework.errors import FrameworkError
from framework.execute.pipeline import RunOptions, execute
from framework.plan.model import RunSelection

BAD = Path(__file__).parent / "bad_configs"


def _text(path: Path) -> str:
    """A config's text, undecodable bytes kept as they are (some files test exactly those)."""
    return path.read_bytes().decode("utf-8", "surrogateescape")


def _expectations(path: Path) -> dict[str, str]:
    found = {}
    for line in _text(path).splitlines():
        m = re.match(r"# (error|line|key): (.*)", line)
        if not m:
            break
        found[m.group(1)] = m.group(2)
    return found


def _materialise(path: Path, folder: Path, generated: dict[str, Path]) -> Path:
    text = _text(path)
    for name, file in generated.items():
        text = text.replace(f"@{name}@", str(file))
    out = folder / path.name
    out.write_bytes(text.encode("utf-8", "surrogateescape"))
    return out


@pytest.mark.parametrize("bad", sorted(BAD.glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_config_is_reported_at_its_place(bad, tmp_path, generated):
    expect = _expectations(bad)
    config = _materialise(bad, tmp_path, generated)
    out = tmp_path / "out"
    with pytest.raises(FrameworkError) as info:
        execute(RunOptions(config=config, output=out, threads=1))
    err = info.value
    assert re.search(expect["error"], str(err)), str(err)
    assert err.location is not None, str(err)
    assert err.location.file.endswith(bad.name) or "include" in expect.get("key", "")
    assert err.location.line == int(expect["line"]), str(err)
    if "key" in expect:
        assert err.location.key == expect["key"], str(err)
    assert not out.exists(), "no output may be left behind on failure"


def test_unknown_systematic_pattern_suggests(tmp_path, generated):
    config = _materialise(BAD.parent / "bad_configs" / "unknown_key.yaml", tmp_path, generated)
    config.write_text(
        config.read_text().replace("bns:", "bins:")
        + "systematics:\n  jes: {kind: shape, column: Jet_pt, up: Jet_pt*1.1, down: Jet_pt*0.9}\n"
    )
    with pytest.raises(
        FrameworkError, match=r"--systematics 'jse' matches no declared systematic(.|\n)*did you mean 'jes'"
    ):
        execute(RunOptions(config=config, output=tmp_path / "o", selection=RunSelection(systematics="jse")))


def test_cli_misspelt_column_exits_nonzero_with_place(tmp_path, generated):
    config = _materialise(BAD / "misspelt_column.yaml", tmp_path, generated)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "framework", str(config), "-o", str(out)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert f"{config}:9: defines.met2: unknown column 'MET_ptt'" in proc.stderr
    assert "did you mean 'MET_pt'" in proc.stderr
    assert "Traceback" not in proc.stderr and "input_line" not in proc.stderr
    assert not out.exists()


def test_cli_compile_error_shows_no_root_trace(tmp_path, generated):
    config = _materialise(BAD / "cpp_does_not_compile.yaml", tmp_path, generated)
    proc = subprocess.run(
        [sys.executable, "-m", "framework", str(config), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert f"{config}:9: defines.bad: column 'bad' does not compile" in proc.stderr
    assert "input_line" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
