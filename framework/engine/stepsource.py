"""Graph steps and fills as C++ source, and the keys they are cached under.

Each step (a Define, Filter or Vary: its expression, the exact types of the columns it reads,
the name it defines) becomes a small typed C++ function with C linkage; each fill, one that
books `fw::Fill` on its value types. A step's key is the SHA-256 of that source, of every
header it includes (recursively), of the ROOT build, the compiler and its flags
(`Toolchain`). `framework.engine.compiled` compiles them and keeps the libraries.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from framework import cache
from framework.engine.rootenv import CORRECTIONS_HEADER, FILL_HEADER, FRAMEWORK_HEADER

# The generated functions: a graph step changes the node in place; a fill books an action on the
# node and hands back a heap RResultPtr<fw::FillResult> (cpp/session.cxx: fw_apply, fw_book_with).
SIGNATURES = {
    "step": "ROOT::RDF::RNode *node, char *error, unsigned long size",
    "fill": "ROOT::RDF::RNode *node, const char *layouts, const char *columns, void **result, char *error, "
    "unsigned long size",
}
ABI = 3  # of SIGNATURES and of what the functions do

# What the interpreter offers without an #include (ROOT's modules, `using namespace std`):
# expressions may rely on it, so every compiled step gets the same.
PRELUDE = (
    "ROOT/RDataFrame.hxx",
    "ROOT/RVec.hxx",
    "TMath.h",
    "Math/Vector2D.h",
    "Math/Vector3D.h",
    "Math/Vector4D.h",
    "Math/VectorUtil.h",
    "algorithm",
    "cmath",
    "cstdio",
    "exception",
    "numeric",
    "string",
    "vector",
)


# ---------------------------------------------------------------- toolchain


@dataclass(frozen=True)
class Toolchain:
    """The compiler and the ROOT build that compiled code depends on."""

    compiler: str
    compiler_version: str
    root_dir: str
    root_build: str  # ROOT's version and the identity of its libraries
    flags: tuple[str, ...]

    @property
    def include(self) -> Path:
        return Path(self.root_dir) / "include"

    @property
    def lib(self) -> Path:
        return Path(self.root_dir) / "lib"

    def identity(self) -> dict[str, Any]:
        return {"compiler": self.compiler_version, "root": self.root_build, "flags": list(self.flags), "abi": ABI}


@functools.cache
def toolchain() -> Toolchain | None:
    """The current toolchain, or None without a C++ compiler (everything is then interpreted)."""
    spec = importlib.util.find_spec("ROOT")
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if spec is None or not spec.submodule_search_locations or compiler is None:
        return None
    root_dir = Path(next(iter(spec.submodule_search_locations)))
    try:
        version = subprocess.run(
            [compiler, "-dumpfullversion", "-dumpmachine"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.split()
        version_header = (root_dir / "include" / "ROOT" / "RVersion.hxx").read_text()
        libraries = [root_dir / "lib" / name for name in ("libCore.so", "libROOTDataFrame.so", "libCling.so")]
        build = [version_header] + [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in libraries]
    except (OSError, subprocess.SubprocessError):
        return None
    flags = ("-std=c++17", "-O2", "-fPIC", "-pthread", "-fsized-deallocation", "-m64")
    return Toolchain(compiler, " ".join([Path(compiler).name, *version]), str(root_dir), cache.key_of(build), flags)


_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.MULTILINE)


def header_files(paths: Sequence[Path]) -> list[Path]:
    """Headers and the local files they include ("..." includes), recursively, in order found."""
    seen: dict[Path, None] = {}

    def visit(path: Path) -> None:
        if path in seen or not path.is_file():
            return
        seen[path] = None
        for name in _INCLUDE.findall(path.read_text(errors="replace")):
            visit((path.parent / name).resolve())

    for p in paths:
        visit(Path(p).resolve())
    return list(seen)


def header_digest(paths: Sequence[Path]) -> str:
    """Digest of the contents of `header_files(paths)`."""
    return cache.key_of([[str(p), p.read_text(errors="replace")] for p in header_files(paths)])


# ---------------------------------------------------------------- steps as C++


@dataclass(frozen=True)
class Correction:
    """A correctionlib correction an expression reads as `*symbol`."""

    symbol: str
    file: str
    name: str
    compound: bool = False  # a CompoundCorrection

    def loader(self) -> str:
        """C++ giving the correction's Ref (a shared pointer) from its file."""
        found = f"compound().at({json.dumps(self.name)})" if self.compound else f"at({json.dumps(self.name)})"
        return f"correction::CorrectionSet::from_file({json.dumps(self.file)})->{found}"

    @property
    def type(self) -> str:
        return "correction::CompoundCorrection" if self.compound else "correction::Correction"


@dataclass(frozen=True)
class StepSource:
    """One graph step or fill as a C++ function, and the key it is cached under."""

    key: str
    code: str  # the body: `*node = node->Define(...);`
    headers: tuple[str, ...]
    corrections: tuple[Correction, ...]
    type: str | None  # for a define: the type of the column it makes (filled in after a miss)
    abi: str = "step"  # a key of SIGNATURES

    @property
    def symbol(self) -> str:
        return f"fwc_{self.key[:32]}"

    def function(self) -> str:
        """The C++ function: C linkage, C++ exceptions turned into a message and a non-zero result."""
        return (
            f'extern "C" int {self.symbol}({SIGNATURES[self.abi]})\n{{\n'
            f"   try {{\n      {self.code}\n      return 0;\n"
            "   } catch (const std::exception &e) {\n"
            '      std::snprintf(error, size, "%s", e.what());\n      return 1;\n   }\n}'
        )


def lambda_of(params: Sequence[tuple[str, str]], expression: str) -> str:
    """The expression as RDataFrame's interpreter would compile it: columns as `T &name`
    parameters, `return` added unless the expression has its own."""
    args = ", ".join(f"{ctype} &{name}" for name, ctype in params)
    body = expression if re.search(r"\breturn\b", expression) else f"return {expression}"
    return f"[]({args}) {{ {body}\n; }}"


def _strings(items: Sequence[str]) -> str:
    return "{" + ", ".join(json.dumps(i) for i in items) + "}"


def define_code(name: str, params: Sequence[tuple[str, str]], expression: str) -> str:
    columns = _strings([n for n, _ in params])
    return f"*node = node->Define({json.dumps(name)}, {lambda_of(params, expression)}, {columns});"


def filter_code(name: str, params: Sequence[tuple[str, str]], expression: str) -> str:
    columns = _strings([n for n, _ in params])
    return f"*node = node->Filter({lambda_of(params, expression)}, {columns}, {json.dumps(name)});"


def vary_code(
    name: str,
    columns: Sequence[str],
    params: Sequence[tuple[str, str]],
    expression: str,
    directions: Sequence[str] = ("up", "down"),
) -> str:
    target = json.dumps(columns[0]) if len(columns) == 1 else f"std::vector<std::string>{_strings(columns)}"
    return (
        f"*node = node->Vary({target}, {lambda_of(params, expression)}, {_strings([n for n, _ in params])}, "
        f"{_strings(directions)}, {json.dumps(name)});"
    )


def lumi_mask_code(
    name: str,
    masks: Sequence[Sequence[tuple[int, int, int]]],
    by_sample: Sequence[int],
    params: Sequence[tuple[str, str]],
) -> str:
    """A Filter keeping the events whose (run, luminosity section) their sample's mask certifies:
    each mask's ranges as a constant array, made into one `fw::LumiMask` when the step is applied
    (not per event, not per thread). `params`: the sample column (when the samples' masks differ),
    then the run and luminosity-section columns, with their types."""
    lines = []
    for i, ranges in enumerate(masks):
        flat = ", ".join(f"{run}u, {first}u, {last}u" for run, first, last in ranges)
        data = f"fw_lumi_mask_{i}, sizeof(fw_lumi_mask_{i}) / sizeof(unsigned)" if ranges else "nullptr, 0"
        if ranges:
            lines.append(f"static const unsigned fw_lumi_mask_{i}[] = {{{flat}}};")
        lines.append(f"const auto mask_{i} = std::make_shared<const fw::LumiMask>({data});")
    args = ", ".join(f"const {ctype} &{column}" for column, ctype in params)
    names = [column for column, _ in params]
    if len(set(by_sample)) > 1:  # the masks differ between samples: the sample column comes first
        table = ", ".join(f"mask_{i}" if i >= 0 else "nullptr" for i in by_sample)
        lines.append(
            "const auto masks = std::make_shared<const fw::SampleLumiMasks>("
            f"std::vector<std::shared_ptr<const fw::LumiMask>>{{{table}}});"
        )
        test = f"[masks]({args}) {{ return masks->Pass({', '.join(names)}); }}"
    else:
        test = f"[mask_0]({args}) {{ return mask_0->Contains({', '.join(names)}); }}"
    lines.append(f"*node = node->Filter({test}, {_strings(names)}, {json.dumps(name)});")
    return "\n      ".join(lines)


def fill_code(value_types: Sequence[str]) -> str:
    """Book `fw::Fill` on the sample index, the weight vector and value columns of these types,
    the column names given when called: one function serves every fill of the same types."""
    types = ", ".join(["int", "ROOT::RVecD", *value_types])
    action = f"fw::Fill<{', '.join(value_types)}>(fw::ParseLayouts(layouts), node->GetNSlots())"
    return f"*result = new ROOT::RDF::RResultPtr<fw::FillResult>(node->Book<{types}>({action}, fw::Lines(columns)));"


class StepSources:
    """Makes the StepSource of each step of a run: the headers and corrections it may use are
    the run's; the toolchain and header contents go into every key."""

    def __init__(self, cpp_files: Sequence[Path], corrections: Sequence[Correction]) -> None:
        self.tools = toolchain()
        self.cpp = tuple(str(Path(p).resolve()) for p in cpp_files)
        self.corrections = tuple(corrections)
        self._digest = header_digest([FRAMEWORK_HEADER, FILL_HEADER, *map(Path, self.cpp)])
        self._corrections_digest = header_digest([CORRECTIONS_HEADER])

    def source(self, code: str, abi: str = "step") -> StepSource:
        used = tuple(c for c in self.corrections if re.search(rf"\b{c.symbol}\b", code))
        key = cache.key_of(
            abi,
            code,
            self.cpp,
            self._digest,
            [asdict(c) for c in used],
            self._corrections_digest if used else None,
            self.tools.identity() if self.tools else None,
        )
        return StepSource(key, code, self.cpp, used, None, abi)


def prelude(corrections: Sequence[Correction], headers: Sequence[str]) -> str:
    """What generated functions are compiled after: the interpreter's implicit headers, the
    framework's, `using namespace std` (as in the interpreter), the `cpp:` files, corrections."""
    lines = [f"#include <{h}>" for h in PRELUDE]
    lines += [f'#include "{FRAMEWORK_HEADER}"', f'#include "{FILL_HEADER}"']
    if corrections:
        lines.append(f'#include "{CORRECTIONS_HEADER}"')
    lines.append("using namespace std;")
    lines += [f'#include "{h}"' for h in dict.fromkeys(headers)]
    for c in corrections:
        # loaded on first use, not when the library is loaded (a missing file is then an error, not an abort)
        lines.append(
            f"namespace {{ struct {c.symbol}_t {{ const {c.type} &operator*() const {{ "
            f"static const auto c = {c.loader()}; return *c; }} }} const {c.symbol}; }}"
        )
    return "\n".join(lines)


def translation_unit(steps: Sequence[StepSource]) -> str:
    corrections = list(dict.fromkeys(c for s in steps for c in s.corrections))
    text = ["// generated by framework.engine.stepsource: graph steps and fills as typed RDataFrame calls"]
    text.append(prelude(corrections, [h for s in steps for h in s.headers]))
    text += [s.function() for s in steps]
    return "\n".join(text) + "\n"
