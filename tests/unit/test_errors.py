"""One error hierarchy: every class is an AmplifyError, a matching built-in, with a status."""

from __future__ import annotations

import inspect

import pytest

from amplify_ml import errors


def _classes() -> list[type[errors.AmplifyError]]:
    return [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, errors.AmplifyError) and c is not errors.AmplifyError
    ]


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_each_error_has_a_status_and_a_builtin_parent(cls: type[errors.AmplifyError]) -> None:
    assert 400 <= cls.http_status < 600
    builtins = [
        b
        for b in cls.__mro__
        if b.__module__ == "builtins" and b not in (object, Exception, BaseException)
    ]
    assert builtins, f"{cls.__name__} should also inherit a matching built-in exception"


def test_statuses_that_the_api_relies_on() -> None:
    assert errors.ConsentError.http_status == 403
    assert errors.NotFoundError.http_status == 404
    assert errors.AuthenticationError.http_status == 401
    assert errors.ContractError.http_status == 422
    assert issubclass(errors.ContractError, ValueError)
    assert issubclass(errors.NotFoundError, LookupError)


def test_manifest_error_carries_its_problems() -> None:
    exc = errors.ManifestError("refused", problems=["p"], source="P001")
    assert (str(exc), exc.problems, exc.source) == ("refused", ["p"], "P001")
