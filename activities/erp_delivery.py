"""The ERP dispatcher's activity: deliver due postings, oldest first and in order per order.

A posting is delivered only when every earlier posting of its order was (a pending or dead
one holds the rest of its order back), so the ERP books an order's documents in the order
they were issued. Each is sent under its idempotency key: a posting whose answer was lost
is sent again and the ERP deduplicates it. What the answers mean (activities/erp.py):

- acknowledged: `delivered`, with the ERP's reference;
- refused (4xx): `dead`, with the ERP's reason, until `orderflow erp retry`;
- the ERP is away (no connection, timeout, 503...): the round stops, the posting keeps its
  place, and the dispatcher waits longer each time (doubling up to the cap) before it tries
  again; when the ERP is back, everything due flows at once;
- any other failure of one posting (500...): that posting waits longer each time, alone.
"""

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, exists, func, select, update
from sqlalchemy.orm import Session, aliased
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.db.models import ErpPosting, utcnow
from activities.erp import ErpAdapter, ErpUnavailable, PostingRefused
from domain.erp import DeadLetter, DeliveryReport, DeliveryRequest, backoff

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy:
    """How the dispatcher paces itself (workers/settings.py, ORDERFLOW_ERP_*)."""

    poll_interval: timedelta = timedelta(seconds=1)
    first_retry: timedelta = timedelta(seconds=1)
    max_backoff: timedelta = timedelta(minutes=5)
    concurrency: int = 4
    """Orders delivered at once (one posting of an order at a time, always)."""


@dataclass
class Round:
    """What one pass over the due postings did."""

    delivered: int = 0
    failed: int = 0
    refused: int = 0
    outage: str | None = None
    """The ERP is away: why (the round stopped there)."""
    last_error: str | None = None


def due_heads(session: Session, now: datetime, limit: int) -> list[ErpPosting]:
    """Pending postings due by `now` that no earlier posting of their order holds back."""
    earlier = aliased(ErpPosting)
    held_back = exists().where(
        and_(
            earlier.order_id == ErpPosting.order_id,
            earlier.seq < ErpPosting.seq,
            earlier.state != "delivered",
        )
    )
    return list(
        session.scalars(
            select(ErpPosting)
            .where(ErpPosting.state == "pending", ErpPosting.next_attempt_at <= now, ~held_back)
            .order_by(ErpPosting.id)
            .limit(limit)
        )
    )


def deliver_round(
    engine: Engine,
    adapter: ErpAdapter,
    policy: DeliveryPolicy,
    now: datetime | None = None,
    *,
    probe: bool = False,
    tick: Callable[[], None] = lambda: None,
) -> Round:
    """Deliver the postings due by `now` (default: the clock), at most one per order.

    `probe`: the ERP was away: try the oldest posting alone first, and the rest only once
    it is acknowledged. `tick` is called every few seconds while deliveries run (the activity
    heartbeats).
    """
    now = now or utcnow()
    with Session(engine, expire_on_commit=False) as session:
        heads = due_heads(session, now, limit=policy.concurrency * 8)
    done = Round()
    away = threading.Event()
    lock = threading.Lock()

    def one(posting: ErpPosting) -> None:
        if away.is_set():
            return  # the ERP is away: the rest keep their place, untried
        try:
            ack = adapter.deliver(posting)
        except PostingRefused as refusal:
            _settle(engine, posting, state="dead", last_error=str(refusal))
            log.warning("ERP refused %s: %s", posting.idempotency_key, refusal)
            with lock:
                done.refused += 1
        except Exception as error:  # ErpUnavailable, or a fault of ours with this posting
            outage = isinstance(error, ErpUnavailable) and error.outage
            if not isinstance(error, ErpUnavailable):
                log.exception("cannot deliver %s", posting.idempotency_key)
            wait_for = timedelta(0) if outage else _backoff(posting.attempts + 1, policy)
            _settle(engine, posting, last_error=str(error), next_attempt_at=now + wait_for)
            with lock:
                done.failed += 1
                done.last_error = str(error)
                if outage:
                    done.outage = str(error)
                    away.set()
        else:
            delivered = {"erp_reference": ack[:120], "delivered_at": utcnow()}
            _settle(engine, posting, state="delivered", last_error=None, **delivered)
            with lock:
                done.delivered += 1

    if probe and heads:
        one(heads.pop(0))
        if done.outage:
            return done
    with ThreadPoolExecutor(policy.concurrency, thread_name_prefix="erp") as pool:
        running: set[Future[None]] = {pool.submit(one, p) for p in heads}
        while running:
            finished, running = wait(running, timeout=5, return_when=FIRST_COMPLETED)
            for future in finished:
                future.result()
            tick()
    return done


def standing(engine: Engine) -> tuple[int, list[DeadLetter]]:
    """How many postings are pending, and the dead letters."""
    with Session(engine) as session:
        pending = session.scalar(
            select(func.count()).select_from(ErpPosting).where(ErpPosting.state == "pending")
        )
        dead = [
            DeadLetter(
                id=p.id,
                order_id=p.order_id,
                kind=p.kind,
                document=p.document,
                attempts=p.attempts,
                reason=p.last_error or "",
            )
            for p in session.scalars(
                select(ErpPosting).where(ErpPosting.state == "dead").order_by(ErpPosting.id)
            )
        ]
    return pending or 0, dead


class ErpActivities:
    """The dispatcher's one activity, bound to the database and the configured ERP."""

    def __init__(self, engine: Engine, adapter: ErpAdapter | None, policy: DeliveryPolicy):
        self._engine = engine
        self._adapter = adapter
        self._policy = policy

    @activity.defn(no_thread_cancel_exception=True)
    def deliver_erp_postings(self, request: DeliveryRequest) -> DeliveryReport:
        """Deliver due postings for up to `request.max_seconds`, polling the outbox.

        Returns early when the dead letters differ from `request.dead_seen` (so the
        dispatcher shows them at once) or when cancelled (the worker shuts down).

        Raises:
            ApplicationError: "NoErpConfigured" (retryable: a worker with an ERP takes it).
        """
        adapter = self._adapter
        if adapter is None:
            raise ApplicationError(
                "this worker has no ERP configured (ORDERFLOW_ERP_URL)", type="NoErpConfigured"
            )
        deadline = time.monotonic() + request.max_seconds
        report = DeliveryReport(erp=adapter.url, outage_failures=request.outage_failures)
        while True:
            done = deliver_round(
                self._engine,
                adapter,
                self._policy,
                probe=report.outage_failures > 0,
                tick=activity.heartbeat,
            )
            report.delivered += done.delivered
            report.failed += done.failed
            report.refused += done.refused
            report.last_error = done.last_error or report.last_error
            pause = self._pause(done, report)
            report.pending, report.dead_letters = standing(self._engine)
            activity.heartbeat(report.delivered)
            if [d.id for d in report.dead_letters] != request.dead_seen:
                report.stopped = "dead letters changed"
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if pause > 0:
                activity.wait_for_cancelled_sync(min(pause, left))
            if activity.is_cancelled() or activity.is_worker_shutdown():
                report.stopped = "worker shutdown"
                break
        return report

    def _pause(self, done: Round, report: DeliveryReport) -> float:
        """Seconds to wait before the next round: none while there is work, the poll interval
        when idle, a growing wait while the ERP is away."""
        if done.outage is not None:
            report.outage_failures += 1
            if report.outage_failures == 1:
                activity.logger.warning("the ERP is unreachable: %s", done.outage)
            return _backoff(report.outage_failures, self._policy).total_seconds()
        if done.delivered or done.refused:
            if report.outage_failures:
                activity.logger.info("the ERP answers again")
            report.outage_failures = 0
            return 0.0
        return self._policy.poll_interval.total_seconds()


def _backoff(attempts: int, policy: DeliveryPolicy) -> timedelta:
    return backoff(attempts, policy.first_retry, policy.max_backoff)


def _settle(engine: Engine, posting: ErpPosting, **values: object) -> None:
    """Record one try of a posting (still pending: nobody retried or settled it meanwhile)."""
    with Session(engine) as session, session.begin():
        session.execute(
            update(ErpPosting)
            .where(ErpPosting.id == posting.id, ErpPosting.state == "pending")
            .values(attempts=ErpPosting.attempts + 1, **values)
            .execution_options(synchronize_session=False)
        )
