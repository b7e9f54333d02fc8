"""What every block of the configuration language shares: strict models, names, labels, expressions."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
YIELDS = "yields"  # the histogram of events per category that every run writes
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
Expression = Annotated[str, Field(min_length=1, description="A C++ expression over columns (RDataFrame syntax).")]


def check_identifier(name: str, what: str) -> str:
    if not IDENTIFIER.match(name):
        raise ValueError(f"{what} {name!r} is not a valid name: use letters, digits and '_', not starting with a digit")
    return name


def _check_label(label: str) -> str:
    if not label or label in (".", "..") or any(c in label for c in "/\\") or any(ord(c) < 32 for c in label):
        raise ValueError(
            f"category label {label!r} cannot be used: plots and exports name files after it; "
            "use letters, digits and signs other than '/' and '\\'"
        )
    return label


# Names that become column names, file names or folder names: identifiers, checked at their key.
Name = Annotated[str, AfterValidator(lambda v: check_identifier(v, "name"))]
Label = Annotated[str, AfterValidator(_check_label)]  # category labels, which also name plot files


class Strict(BaseModel):
    """Base of every block: unknown keys are errors, specs are immutable, numbers are finite
    numbers (`.inf`, `.nan` and strings are refused; integers are written as integers)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)
