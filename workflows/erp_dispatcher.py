"""ErpDispatcherWorkflow: one per task queue, delivers the ERP outbox round after round.

Each round is one long-polling activity (`deliver_erp_postings`, heartbeating); between
rounds the workflow shows the outbox to operators in the Temporal Web UI (current details:
pending postings, the ERP's reachability, every dead letter with the ERP's reason and the
command that retries it). It continues as new after a number of rounds, carrying what it knows.
"""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.erp_delivery import ErpActivities
    from domain.erp import DeliveryReport, DeliveryRequest, DispatcherInput


def dispatcher_id(task_queue: str) -> str:
    """One dispatcher per task queue: the workers of a queue share one outbox."""
    return f"erp-dispatcher-{task_queue}"


@workflow.defn
class ErpDispatcherWorkflow:
    """Delivers the ERP outbox forever; a round's failure is retried (the database is away)."""

    @workflow.run
    async def run(self, params: DispatcherInput) -> None:
        last = params.last
        workflow.set_current_details(details(last))
        for _ in range(params.rounds_per_run):
            last = await workflow.execute_activity_method(
                ErpActivities.deliver_erp_postings,
                DeliveryRequest(
                    max_seconds=params.round_seconds,
                    outage_failures=last.outage_failures,
                    dead_seen=[d.id for d in last.dead_letters],
                ),
                start_to_close_timeout=timedelta(seconds=params.round_seconds + 300),
                heartbeat_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    maximum_interval=timedelta(seconds=60),
                ),
                summary="deliver ERP postings",
            )
            workflow.set_current_details(details(last))
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(params.model_copy(update={"last": last}))


def details(report: DeliveryReport) -> str:
    """The outbox as operators read it in the Web UI (Markdown)."""
    lines = [f"**ERP handoff** to {report.erp or 'the ERP'}: {report.pending} pending, "]
    lines[0] += f"{len(report.dead_letters)} dead letter(s)."
    if report.outage_failures:
        lines.append(
            f"The ERP is unreachable ({report.outage_failures} tries in a row): "
            f"{report.last_error or '?'}"
        )
    if report.dead_letters:
        lines += ["", "Refused by the ERP (fix the cause, then `orderflow erp retry ID`):", ""]
        lines += [
            f"- #{d.id} order {d.order_id} {d.kind} {d.document} "
            f"({d.attempts} {'try' if d.attempts == 1 else 'tries'}): {d.reason}"
            for d in report.dead_letters
        ]
    return "\n".join(lines)
