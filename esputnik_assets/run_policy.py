"""How failed work is retried: steps retry transient errors with backoff; runs retry only when their worker died.

The HTTP client already retries 429/5xx/connection errors per request (up to its budget); a step that still fails
(an outage longer than that budget, a warehouse lock held too long) is retried by Dagster after a growing delay.
Run retries (an instance setting, on in the project-local Dagster home) then only cover crashed run workers, so a
step is never retried both ways.
"""

import dagster as dg

STEP_RETRY_POLICY = dg.RetryPolicy(
    max_retries=2, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)  # about 1 and 2 minutes
DAILY_JOB_TAGS = {
    "dagster/max_retries": "1",  # effective where the instance enables run retries (see home.py)
    "dagster/retry_on_asset_or_op_failure": "false",  # step failures are the step retry policy's
}
SCHEDULE_RUN_TAGS = {"esputnik/trigger": "daily_schedule"}  # one tag to filter the schedule's runs by in the UI
