"""One error hierarchy for amplify_ml.

Every failure a user can cause or meet is an :class:`AmplifyError` subclass that also
inherits the matching built-in (``ValueError``, ``LookupError``, ...), so callers can catch
either. Each class carries the HTTP status the API answers with, so the API needs one
exception handler. Messages say what failed, where, expected vs got, and what to do next;
they never echo suspected personal data or another partner's identifiers.
"""

from __future__ import annotations


class AmplifyError(Exception):
    """Root of every amplify_ml error."""

    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(AmplifyError, ValueError):
    """A setting is missing or invalid."""

    http_status = 500


class DataPackError(AmplifyError, ValueError):
    """A data pack (folder, manifest, table file) cannot be used as given."""

    http_status = 422


class ManifestError(DataPackError):
    """manifest.json is missing, malformed, or disagrees with the files.

    ``problems`` lists every problem found (rule, table, message) when the manifest could be
    read; ``source`` is the pack's declared source when known.
    """

    def __init__(
        self, message: str, problems: list | None = None, source: str | None = None
    ) -> None:
        super().__init__(message)
        self.problems = list(problems or [])
        self.source = source


class ContractError(DataPackError):
    """Table contents violate the data-pack contract (DATAPACK.md)."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class ConsentError(DataPackError):
    """A partner has not opted in to share its data (partners.data_sharing is false)."""

    http_status = 403


class PrivacyError(DataPackError):
    """Personal data (a person's e-mail, phone, name or address) where only company data may be."""


class TenantError(DataPackError):
    """Rows of one partner where only another partner's rows may be."""

    http_status = 403


class MissingTableError(AmplifyError, LookupError):
    """A table a step needs is absent from the pack or the lake."""

    http_status = 422


class LakeError(AmplifyError, RuntimeError):
    """The lake (workspace store) is missing, locked or inconsistent."""

    http_status = 503


class NotFoundError(AmplifyError, LookupError):
    """A resource does not exist, or is not visible to the caller."""

    http_status = 404


class NoChampionError(NotFoundError):
    """A model has no champion (no version passed the gate) in the workspace."""


class AuthenticationError(AmplifyError, PermissionError):
    """No API key, or an unknown one."""

    http_status = 401


class TooManyAttemptsError(AmplifyError, PermissionError):
    """Too many refused attempts with one key id in a short time; ``retry_after`` seconds
    until the next attempt is heard."""

    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermissionDeniedError(AmplifyError, PermissionError):
    """The caller's role may not use this resource."""

    http_status = 403


class ModelError(AmplifyError, RuntimeError):
    """A model cannot be trained, loaded or applied."""

    http_status = 503


class UnfedError(ModelError):
    """The lake cannot feed a model: a table it needs is in no ingested pack (for example
    device models on a lake of sell-through only). Not a passing outage: pages say so in place
    of the model's section; the API still answers 503 with the tables to ingest."""


class InvalidRequestError(AmplifyError, ValueError):
    """A request or function argument is out of its allowed range."""

    http_status = 422
