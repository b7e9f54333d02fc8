"""ROOT's interpreter, for the steps the compile cache does not hold yet.

Headers, user C++ files and corrections are declared on the first step it has to compile;
generated functions and corrections once per process. Compiler errors become messages that
point at the YAML.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from framework.config.expressions import referenced_names
from framework.engine.rootenv import (
    CORRECTIONS_HEADER,
    FILL_HEADER,
    FRAMEWORK_HEADER,
    captured_stderr,
    compiler_messages,
    declare_code,
    declare_file,
    root,
)
from framework.engine.session import SessionError
from framework.engine.stepsource import Correction, StepSource
from framework.errors import ConfigError, Location
from framework.plan.model import Plan

_declared_corrections: set[str] = set()
_declared_functions: dict[str, int] = {}  # generated functions the interpreter compiled: symbol -> address
_checks = iter(range(1 << 62))


class Interpreter:
    """Makes ROOT's interpreter ready for expressions, on the first step it has to compile."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.ready = False

    def prepare(self) -> None:
        if self.ready:
            return
        declare_file(FRAMEWORK_HEADER)
        for path in self.plan.cpp:
            declare_file(Path(path))
        self._declare_corrections()
        self.ready = True

    def _declare_corrections(self) -> None:
        """Load each correctionlib correction once per process, as a C++ global."""
        if not self.plan.corrections:
            return
        import correctionlib

        correctionlib.register_pyroot_binding()
        declare_file(CORRECTIONS_HEADER)
        for c in self.plan.corrections:
            if c.symbol in _declared_corrections:
                continue
            code = f"const auto {c.symbol} = {Correction(c.symbol, c.file, c.name, c.compound).loader()};"
            with captured_stderr() as lines:
                ok = root().gInterpreter.Declare(code)
            if not ok:
                raise ConfigError(f"cannot load correction {c.name!r} from {c.file}: {compiler_messages(lines)}")
            _declared_corrections.add(c.symbol)

    def function(self, source: StepSource) -> int:
        """The address of a generated function, compiled by the interpreter (once per process)."""
        if source.symbol not in _declared_functions:
            declare_file(FILL_HEADER)
            declare_code(source.function(), f"generated {source.abi} {source.symbol}")
            r = root()
            _declared_functions[source.symbol] = int(r.addressof(r.gInterpreter.FindSym(source.symbol)))
        return _declared_functions[source.symbol]

    def check_compiles(self, types: dict[str, str], expression: str, what: str, origin: Location) -> None:
        """Compile `expression` alone first: in ROOT 6.40 a Vary whose expression fails to compile
        crashes the process (invalid free) instead of raising."""
        names = [n for n in referenced_names(expression) if n in types]
        params = ", ".join(f"const {types[n]} &{n}" for n in names)
        code = f"namespace fw_checks {{ auto check_{next(_checks)}({params}) {{ return {expression}; }} }}"
        with captured_stderr() as lines:
            ok = root().gInterpreter.Declare(code)
        if not ok:
            raise ConfigError(
                f"{what} does not compile: {compiler_messages(lines)}", origin, "fix the C++ expression in the YAML"
            )


def run_interpreted(action: str, origin: Location, call: Callable[[], int]) -> int:
    """Run a session call that makes the interpreter compile user C++; failures point at the YAML."""
    with captured_stderr() as lines:
        try:
            return call()
        except SessionError as err:
            failure = err
    detail = compiler_messages(lines) if lines else str(failure).strip().splitlines()[-1]
    raise ConfigError(f"{action} does not compile: {detail}", origin, "fix the C++ expression in the YAML") from None
