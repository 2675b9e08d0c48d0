"""Source errors worded for the person who has to act on them; none of them ever carries the API key."""

from __future__ import annotations


class EsputnikError(RuntimeError):
    """Base of every failure talking to eSputnik."""


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
