"""Offer received stock to waiting orders, one at a time, through each order's workflow."""

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from workflows import search


class BackorderActivities:
    """Talks to order workflows; needs the worker's Temporal client."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn
    async def offer_stock(self, order_id: str) -> str:
        """Ask one backordered order to try reserving again; returns its status afterwards.

        An Update (not a signal) so the next order in the queue is offered stock only after
        this one has taken what it needs: priority order is kept exactly.
        """
        handle = self._client.get_workflow_handle(search.workflow_id(order_id))
        try:
            status: str = await handle.execute_update("stock_arrived", result_type=str)
        except WorkflowUpdateFailedError as refused:
            return f"REFUSED: {refused.cause}"
        except RPCError as error:
            if error.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                return "CLOSED"  # the order finished (e.g. its backorder expired) meanwhile
            raise
        return status
