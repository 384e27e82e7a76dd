"""Offer received stock to waiting orders, one at a time, through each order's workflow."""

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from domain.stock import StockOffer
from workflows import search

T = TypeVar("T")


async def _heartbeating(call: Awaitable[T], every: float = 2.0) -> T:
    task = asyncio.ensure_future(call)
    while True:
        done, _ = await asyncio.wait({task}, timeout=every)
        if done:
            return task.result()
        activity.heartbeat()


class BackorderActivities:
    """Talks to order workflows; needs the worker's Temporal client."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn
    async def offer_stock(self, offer: StockOffer) -> str:
        """Ask one backordered order to try reserving again; returns its status afterwards.

        An Update (not a signal) so the next order in the queue is offered stock only after
        this one has taken what it needs: priority order is kept exactly. Its id is the
        receipt's, so a retried activity joins the same Update instead of asking twice; it
        heartbeats while the order works, so a dead worker is noticed in seconds.
        """
        handle = self._client.get_workflow_handle(search.workflow_id(offer.order_id))
        try:
            update = handle.execute_update(
                "stock_arrived", id=f"stock-{offer.receipt_id}", result_type=str
            )
            status: str = await _heartbeating(update)
        except WorkflowUpdateFailedError as refused:
            return f"REFUSED: {refused.cause}"
        except RPCError as error:
            if error.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                return "CLOSED"  # the order finished (e.g. its backorder expired) meanwhile
            raise
        return status
