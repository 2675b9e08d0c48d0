"""The executor of every run: a one-step run works in the run's own process, a longer run forks its steps from a
server that has imported the definitions once.

Dagster's default (`spawn`) starts a fresh interpreter per step that imports Dagster and the whole code location
again, which costs more than a day's work (README "Run overhead"). A run of one step (one asset, one day or one
range) needs no second process at all; the steps of a longer run (a day of every asset, a backfill) are forked by
`forkserver` from a process that preloaded `PRELOADED_MODULES`, so each step only builds the definitions.
The run config keeps Dagster's multiprocess fields (`max_concurrent`, `start_method`, ...); a `start_method`
given there replaces the forkserver.
"""

from collections.abc import Iterator

import dagster as dg
from dagster._core.definitions.executor_definition import MULTI_PROC_CONFIG, multiple_process_executor_requirements
from dagster._core.events import DagsterEvent
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._core.executor.in_process import InProcessExecutor
from dagster._core.executor.multiprocess import MultiprocessExecutor

PRELOADED_MODULES = ("dagster", "esputnik_assets.definitions")
FORKSERVER = {"forkserver": {"preload_modules": list(PRELOADED_MODULES)}}


class OneStepInProcessExecutor(MultiprocessExecutor):
    """Dagster's multiprocess executor, except that a plan of a single step runs in the run's process."""

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
        if len(execution_plan.step_keys_to_execute) == 1:
            yield from InProcessExecutor(self.retries, self.step_dependency_config).execute(plan_context, execution_plan)
        else:
            yield from super().execute(plan_context, execution_plan)


@dg.executor(name="esputnik_multiprocess", config_schema=MULTI_PROC_CONFIG, requirements=multiple_process_executor_requirements())
def run_executor(init_context: dg.InitExecutorContext) -> OneStepInProcessExecutor:
    config = init_context.executor_config
    start_method, start_config = next(iter((config.get("start_method") or FORKSERVER).items()))
    return OneStepInProcessExecutor(
        retries=RetryMode.from_config(config["retries"]),
        max_concurrent=config.get("max_concurrent"),
        tag_concurrency_limits=config.get("tag_concurrency_limits"),
        start_method=start_method,
        explicit_forkserver_preload=start_config.get("preload_modules"),
        step_dependency_config=StepDependencyConfig.from_config(config.get("step_dependency_config")),
    )
