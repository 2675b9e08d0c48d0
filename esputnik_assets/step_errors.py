"""Errors that leave a step hold no key: the one guard, for the asset functions (metric and raw).

Dagster shows a failed step's error, its causes and its stack in the run log, the UI and every alert. An error whose
text (or a cause's) holds a registered form of a key, e.g. a warehouse quoting a value a server copied the key into,
leaves the step as a `dg.Failure` whose description and traceback are redacted, raised unchained (outside the
`except` block, `from None`) so the raw text is not attached. Every other error leaves untouched.
"""

from __future__ import annotations

import functools
import inspect
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import dagster as dg

from esputnik_assets.redaction import holds_secret, redact, redact_metadata

Compute = TypeVar("Compute", bound=Callable[..., Any])


def redacted_failure(error: Exception) -> dg.Failure | None:
    """The Failure to raise in place of `error` when its text, causes included, holds a key form; else None."""
    text = "".join(traceback.format_exception(error))
    if not holds_secret(text):
        return None
    metadata = redact_metadata(dict(error.metadata)) if isinstance(error, dg.Failure) else {}
    return dg.Failure(
        description=redact(f"{type(error).__name__}: {error}"),
        metadata={**metadata, "error": dg.MetadataValue.text(redact(text))},
        allow_retries=getattr(error, "allow_retries", True),  # a transient error stays retryable, redacted
    )


def redacted_errors(compute: Compute) -> Compute:
    """Decorate an asset function (plain or generator) so that no error leaves it holding a key form."""
    if inspect.isgeneratorfunction(compute):

        @functools.wraps(compute)
        def generator(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from compute(*args, **kwargs)
                return
            except Exception as error:
                failure = redacted_failure(error)
                if failure is None:
                    raise
            raise failure from None

        return generator  # type: ignore[return-value]

    @functools.wraps(compute)
    def function(*args: Any, **kwargs: Any) -> Any:
        try:
            return compute(*args, **kwargs)
        except Exception as error:
            failure = redacted_failure(error)
            if failure is None:
                raise
        raise failure from None

    return function  # type: ignore[return-value]
