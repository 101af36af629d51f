"""Patterns for personal data that must never enter the lake (DATAPACK.md, privacy rule 1).

The patterns are written in the common subset of Python ``re`` and RE2 (DuckDB), so the same
text is used to scan whole columns in DuckDB and single values in Python. They favour
catching a real e-mail address or phone number over letting one through; identifiers,
dates, SKUs and device codes of the contract do not match them.
"""

from __future__ import annotations

import re

EMAIL_PATTERN = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"

# Each alternative is one common way of writing a phone number:
#  - international: +49 30 1234567, +1-202-555-0143, 0049 89 12345678, +44 (0)20 7946 0958
#  - North American: (555) 123-4567, 555-123-4567, 555.123.4567
#  - European national with a trunk prefix: 030 1234567, 089/12345678, 0171-1234567
_SEP = r"[ .\-/]"
PHONE_PATTERN = "|".join(
    [
        r"(\+|\b00)[1-9][0-9]{0,2}" + _SEP + r"?(\(0\)" + _SEP + r"?)?\(?[0-9]{1,5}\)?"
        r"(" + _SEP + r"?[0-9]{2,8}){1,4}",
        r"\([0-9]{3}\) ?[0-9]{3}[ .\-][0-9]{4}\b",
        r"\b[0-9]{3}[.\-][0-9]{3}[.\-][0-9]{4}\b",
        r"\b0[1-9][0-9]{1,4}[ /\-][0-9]{4,8}\b",
    ]
)

# A match must hold at least this many digits to count as a phone number.
PHONE_MIN_DIGITS = 7

_EMAIL_RE = re.compile(EMAIL_PATTERN)
_PHONE_RE = re.compile(PHONE_PATTERN)


def has_email(text: str) -> bool:
    """True if ``text`` holds something shaped like an e-mail address."""
    return _EMAIL_RE.search(text) is not None


def has_phone(text: str) -> bool:
    """True if ``text`` holds something shaped like a phone number (7 digits or more)."""
    return any(
        sum(ch.isdigit() for ch in m.group(0)) >= PHONE_MIN_DIGITS for m in _PHONE_RE.finditer(text)
    )


def looks_personal(text: str) -> bool:
    """True if ``text`` holds an e-mail address or a phone number."""
    return has_email(text) or has_phone(text)


def safe_echo(value: object, max_len: int = 24) -> str:
    """A value fit to print in an error message: personal-looking values are withheld."""
    text = str(value)
    if looks_personal(text):
        return "<withheld: looks like personal data>"
    if len(text) > max_len:
        text = text[: max_len - 3] + "..."
    return repr(text)


def duckdb_has_email(expr: str) -> str:
    """A DuckDB predicate: ``expr`` holds an e-mail address."""
    return f"regexp_matches({expr}, '{EMAIL_PATTERN}')"


def duckdb_has_phone(expr: str) -> str:
    """A DuckDB predicate: ``expr`` holds a phone number with enough digits.

    DuckDB's RE2 has no look-around, so every candidate match is extracted and its digits
    counted.
    """
    pattern = PHONE_PATTERN.replace("'", "''")
    return (
        f"(regexp_matches({expr}, '{pattern}') AND list_max(list_transform("
        f"regexp_extract_all({expr}, '{pattern}'), "
        f"m -> length(regexp_replace(m, '[^0-9]', '', 'g')))) >= {PHONE_MIN_DIGITS})"
    )
