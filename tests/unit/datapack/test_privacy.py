"""Personal-data patterns: the same answers in Python and in DuckDB."""

from __future__ import annotations

import duckdb
import pytest

from amplify_ml.datapack.privacy import (
    duckdb_has_email,
    duckdb_has_phone,
    has_email,
    has_phone,
    safe_echo,
)

PHONES = [
    "+49 30 1234567",
    "(555) 123-4567",
    "555-123-4567",
    "+1-202-555-0143",
    "0049 89 12345678",
    "+44 20 7946 0958",
    "+44 (0)20 7946 0958",
    "+33 1 23 45 67 89",
    "030 1234567",
    "tel. 089/12345678",
    "call 0171-1234567 now",
    "555.123.4567",
    "+4930123456",
]
NOT_PHONES = [
    "LaserJet Pro 4001",
    "13.A2.D3",
    "2024-01-02",
    "2024-01-02T10:00:00Z",
    "EliteBook 840 G10",
    "Model 3000-X",
    "A-00012345",
    "A-1234-5678",
    "W1A53A",
    "1000+",
    "250-999",
    "10.5",
    "192.168.0.1",
    "ISO 9001",
    "Q3 2024",
    "D-3f2a9c01",
    "supply_level_pct.black",
    "PO 2024-000123",
    "+5 units",
    "100-200-300",
    "Wholesale & retail trade",
]
EMAILS = ["jane.doe@example.com", "a@b.co", "x_y+tag@mail.shop.example"]
NOT_EMAILS = ["x @ y", "foo@bar", "@handle", "support at example dot com"]


def _duck(predicate_sql: str, value: str) -> bool:
    con = duckdb.connect()
    return con.execute(f"SELECT {predicate_sql} FROM (SELECT ?::VARCHAR AS x)", [value]).fetchone()[
        0
    ]


@pytest.mark.parametrize("text", PHONES)
def test_phone_numbers_are_found(text: str) -> None:
    assert has_phone(text)
    assert _duck(duckdb_has_phone("x"), text)


@pytest.mark.parametrize("text", NOT_PHONES)
def test_company_data_is_not_a_phone_number(text: str) -> None:
    assert not has_phone(text)
    assert not _duck(duckdb_has_phone("x"), text)


@pytest.mark.parametrize("text", EMAILS)
def test_emails_are_found(text: str) -> None:
    assert has_email(text) and _duck(duckdb_has_email("x"), text)


@pytest.mark.parametrize("text", NOT_EMAILS)
def test_non_emails(text: str) -> None:
    assert not has_email(text) and not _duck(duckdb_has_email("x"), text)


def test_safe_echo_withholds_and_truncates() -> None:
    assert safe_echo("jane@x.example") == "<withheld: looks like personal data>"
    assert safe_echo("+49 30 1234567") == "<withheld: looks like personal data>"
    assert safe_echo("2024/01/02") == "'2024/01/02'"
    assert safe_echo("x" * 40) == repr("x" * 21 + "...")
