"""What a C++ expression in the YAML refers to: the column names it reads.

A light tokenizer, not a C++ parser: it finds identifiers that are used as values
(not called, not qualified, not members, not types or keywords, not lambda
parameters). The build stage's compiler has the last word; this lets mistakes be
reported with the YAML place and a suggestion before anything is compiled.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(
    r'"(?:\\.|[^"\\])*"'  # string literal
    r"|'(?:\\.|[^'\\])*'"  # char literal
    r"|[A-Za-z_]\w*"  # identifier
    r"|\d[\w.]*(?:[eE][+-]?\d+)?\w*"  # number
    r"|::|->|==|!=|<=|>=|&&|\|\||\S"
)
_IDENT = re.compile(r"^[A-Za-z_]\w*$")
_LAMBDA_PARAMS = re.compile(r"\[[^\]]*\]\s*\(([^)]*)\)")

CPP_WORDS = frozenset(
    """
    alignof and auto bool break case char const constexpr continue decltype default do double else
    enum false float for if int long mutable noexcept not nullptr or return short signed sizeof static
    static_cast dynamic_cast reinterpret_cast const_cast struct switch template this true typename
    unsigned void while xor size_t std ROOT TMath Float_t Double_t Int_t UInt_t Long64_t ULong64_t
    Bool_t Char_t UChar_t Short_t UShort_t RVec RVecF RVecD RVecI RVecU RVecB RVecC RVecL RVecUL RVecLL
    RVecULL int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t M_PI M_E M_SQRT2
    """.split()
)


def tokens(expression: str) -> list[str]:
    return _TOKEN.findall(expression)


def referenced_names(expression: str) -> list[str]:
    """Identifiers the expression reads as values, in order of first use, without repeats."""
    toks = tokens(expression)
    local: set[str] = set()
    for params in _LAMBDA_PARAMS.findall(expression):
        for param in params.split(","):
            words = re.findall(r"[A-Za-z_]\w*", param)
            if words:
                local.add(words[-1])
    found: list[str] = []
    for i, tok in enumerate(toks):
        if not _IDENT.match(tok) or tok in CPP_WORDS or tok in local:
            continue
        before = toks[i - 1] if i > 0 else ""
        after = toks[i + 1] if i + 1 < len(toks) else ""
        if before in (".", "->", "::") or after in ("(", "::", "{"):
            continue
        if _IDENT.match(before) and before not in ("return", "not", "and", "or") and after in ("=", ";", ","):
            local.add(tok)  # a declaration such as `auto x = ...`
            continue
        if tok not in found:
            found.append(tok)
    return found


def is_identifier(text: str) -> bool:
    return bool(_IDENT.match(text))
