"""What a C++ expression in the YAML refers to: the column names it reads.

A light tokenizer, not a C++ parser: it finds identifiers that are used as values
(not called, not qualified, not members, not types or keywords, not lambda
parameters). The build stage's compiler has the last word; this lets mistakes be
reported with the YAML place and a suggestion before anything is compiled.
"""

from __future__ import annotations

import hashlib
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
    [
        "alignof",
        "and",
        "auto",
        "bool",
        "break",
        "case",
        "char",
        "const",
        "constexpr",
        "continue",
        "decltype",
        "default",
        "do",
        "double",
        "else",
        "enum",
        "false",
        "float",
        "for",
        "if",
        "int",
        "long",
        "mutable",
        "noexcept",
        "not",
        "nullptr",
        "or",
        "return",
        "short",
        "signed",
        "sizeof",
        "static",
        "static_cast",
        "dynamic_cast",
        "reinterpret_cast",
        "const_cast",
        "struct",
        "switch",
        "template",
        "this",
        "true",
        "typename",
        "unsigned",
        "void",
        "while",
        "xor",
        "size_t",
        "std",
        "ROOT",
        "TMath",
        "Float_t",
        "Double_t",
        "Int_t",
        "UInt_t",
        "Long64_t",
        "ULong64_t",
        "Bool_t",
        "Char_t",
        "UChar_t",
        "Short_t",
        "UShort_t",
        "RVec",
        "RVecF",
        "RVecD",
        "RVecI",
        "RVecU",
        "RVecB",
        "RVecC",
        "RVecL",
        "RVecUL",
        "RVecLL",
        "RVecULL",
        "int8_t",
        "int16_t",
        "int32_t",
        "int64_t",
        "uint8_t",
        "uint16_t",
        "uint32_t",
        "uint64_t",
        "M_PI",
        "M_E",
        "M_SQRT2",
    ]
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


_SPANS = re.compile(
    r'"(?:\\.|[^"\\])*"'  # string literal
    r"|'(?:\\.|[^'\\])*'"  # char literal
    r"|(?<![\w.>:])([A-Za-z_]\w*)\s*\["  # an identifier, not a member or qualified, opening a subscript
)


def subscripts(expression: str, arrays: set[str]) -> list[tuple[int, int, str, str]]:
    """The subscripts `name[index]` of `expression` whose name is in `arrays`: (start, end, name,
    index), end just after the closing bracket; outermost only (nested ones are in `index`)."""
    found: list[tuple[int, int, str, str]] = []
    position = 0
    while True:
        match = _SPANS.search(expression, position)
        if match is None:
            return found
        if match.group(1) is None or match.group(1) not in arrays:
            position = match.end()
            continue
        depth, i = 1, match.end()
        while i < len(expression) and depth:
            depth += {"[": 1, "]": -1}.get(expression[i], 0)
            i += 1
        if depth:
            return found  # unbalanced: the compiler will say so
        found.append((match.start(), i, match.group(1), expression[match.end() : i - 1]))
        position = i


def checked_indexing(expression: str, arrays: set[str]) -> tuple[str, dict[int, str]]:
    """`expression` with each subscript of a column in `arrays` replaced by a bounds-checked
    access (`fw::item`: an index out of range throws, naming the subscript's site, the dataset
    and the entry, from which the sample and file are found); returns the new expression and each site's
    subscript as written. A site is a number made from the subscript's text, so an edit
    elsewhere changes no other step."""
    parts, sites, last = [], {}, 0
    for start, end, name, index in subscripts(expression, arrays):
        inner, inner_sites = checked_indexing(index, arrays)
        site = int(hashlib.sha256(expression[start:end].encode()).hexdigest()[:7], 16)
        parts.append(expression[last:start])
        parts.append(f"fw::item({name}, ({inner}), {site}, rdfentry_, __dataset)")
        sites[site] = expression[start:end]
        sites.update(inner_sites)
        last = end
    parts.append(expression[last:])
    return "".join(parts), sites
