"""Source errors worded for the person who has to act on them; none of them ever carries the API key."""

from __future__ import annotations

from esputnik_assets import redaction


class EsputnikError(RuntimeError):
    """Base of every failure talking to eSputnik; its text is redacted of every registered key form (a message may
    quote server data, e.g. a row's offset, and servers echo request headers into it)."""

    def __init__(self, message: str) -> None:
        super().__init__(redaction.redact(message))


class AccountNotConfiguredError(EsputnikError):
    """Neither a key nor an explicit choice of the demo account: reading anything would be a guess."""


class AuthenticationError(EsputnikError):
    """401: the key is wrong or revoked."""


class ForbiddenError(EsputnikError):
    """403: the key is valid but may not read this endpoint; retrying cannot help."""


class BadRequestError(EsputnikError):
    """400: the request or the account's setup is wrong; retrying cannot help."""


class ActivityNotEnabledError(BadRequestError):
    """400 'Contact support to enable ContactActivity.': the account lacks the activity export."""


class EndpointNotFoundError(EsputnikError):
    """404: this account exposes no such endpoint."""


class TransientError(EsputnikError):
    """429/5xx/connection failures that outlasted the retry budget."""


class AttemptError(EsputnikError):
    """One failed attempt, already redacted: the cause a final error is chained to (the raw one may echo the key)."""


class PagingError(EsputnikError):
    """The server's paging did not behave as the contract says (e.g. it ignored startindex)."""


class AnswerTooLargeError(EsputnikError):
    """One answer larger than max_answer_bytes: reading it whole could exhaust memory; retrying cannot help."""


class RedirectRefusedError(EsputnikError):
    """A redirect off the configured scheme, host and port: its rows would not come from the configured account."""


class EchoedCredentialsError(EsputnikError):
    """A value in an answer holds a form of the API key: the server copies request credentials into its answers."""
