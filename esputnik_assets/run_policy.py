"""How failed work is retried: steps retry transient errors with backoff; runs retry only when their worker died.

The HTTP client already retries 429/5xx/connection errors per request (up to its budget); a step that still fails
(an outage longer than that budget, a warehouse lock held too long) is retried by Dagster after a growing delay.
Run retries (an instance setting, on in the project-local Dagster home) then only cover crashed run workers, so a
step is never retried both ways.

A failure that retrying cannot fix (a refused write, a wrong key, a missing endpoint) is raised as a final failure:
no step retry, and its run is tagged so that run retries pass it by too.
"""

import dagster as dg

from esputnik_assets.source.errors import (
    AccountNotConfiguredError,
    AuthenticationError,
    BadRequestError,
    EndpointNotFoundError,
    ForbiddenError,
)
from esputnik_assets.warehouse.base import MixedSourceError, RefusedDaysError, SchemaConflictError

RETRY_ON_FAILURE_TAG = "dagster/retry_on_asset_or_op_failure"  # read from the run when it fails (run retries)
STEP_RETRY_POLICY = dg.RetryPolicy(
    max_retries=2, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)  # about 1 and 2 minutes
DAILY_JOB_TAGS = {
    "dagster/max_retries": "1",  # effective where the instance enables run retries (see home.py)
    RETRY_ON_FAILURE_TAG: "false",  # step failures are the step retry policy's
}
SCHEDULE_RUN_TAGS = {"esputnik/trigger": "daily_schedule"}  # one tag to filter the schedule's runs by in the UI

NOT_RETRYABLE: tuple[type[Exception], ...] = (
    RefusedDaysError,  # an empty or partial answer for stored days: the same answer comes back
    SchemaConflictError,
    MixedSourceError,
    AuthenticationError,  # 401
    ForbiddenError,  # 403
    EndpointNotFoundError,  # 404
    BadRequestError,  # 400
    AccountNotConfiguredError,
)


def final_failure(instance: dg.DagsterInstance, run_id: str, description: str) -> dg.Failure:
    """A failure retrying cannot fix: the step policy skips it (allow_retries=False) and the run is tagged so that
    the instance's run retries skip it too (Dagster decides from the run's tags when the run fails). The errors it
    words are key-free by construction (source errors are redacted when raised, warehouse errors hold no key)."""
    instance.add_run_tags(run_id, {RETRY_ON_FAILURE_TAG: "false"})
    return dg.Failure(description=description, allow_retries=False)
