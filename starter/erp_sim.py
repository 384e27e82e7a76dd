"""A simulated ERP (`orderflow erp-sim`): books signed postings once per key, can be slow,
fail at random, refuse some postings or be down, switched at runtime through POST /control.

The one fake in orderflow: it stands in for the finance system the outbox hands documents
to, speaking the contract of activities/erp.py. It keeps what it booked in memory (and in a
JSON file with `store`), answers a replay of a key with the same ack and counts it.
"""

import asyncio
import json
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from domain.erp import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_problem


class Behaviour(BaseModel):
    """How the simulated ERP answers; every field can be changed at runtime (POST /control)."""

    down: bool = False
    """Answer 503 to every posting (the service is away; /control and /health still answer)."""
    latency_ms: int = 0
    fail_rate: float = 0.0
    """Share of postings answered 500 before anything is booked."""
    refuse: list[str] = []
    """Refuse (422) a posting whose body contains any of these texts."""


class Control(BaseModel):
    """POST /control: the fields to change (missing ones stay as they are)."""

    down: bool | None = None
    latency_ms: int | None = None
    fail_rate: float | None = None
    refuse: list[str] | None = None


class Ledger:
    """What the simulated ERP booked, by idempotency key, in the order it booked them."""

    def __init__(self, store: Path | None = None) -> None:
        self._store = store
        self._lock = threading.Lock()
        self.postings: dict[str, dict[str, Any]] = {}
        self.refused = 0
        self.unavailable = 0
        self.failed = 0
        self.out_of_order = 0
        """Postings booked before an earlier posting (`seq`) of their order: should stay 0."""
        if store is not None and store.exists():
            self.postings = {p["idempotency_key"]: p for p in json.loads(store.read_text())}

    def book(self, key: str, posting: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The booked posting for `key` and whether it is new (False: a replay, counted)."""
        with self._lock:
            known = self.postings.get(key)
            if known is not None:
                known["replays"] += 1
                self._save()
                return known, False
            seq, order_id = posting.get("seq"), posting.get("order_id")
            if isinstance(seq, int) and seq > 1:
                seen = {p["seq"] for p in self.postings.values() if p["order_id"] == order_id}
                self.out_of_order += int(not set(range(1, seq)) <= seen)
            booked = {
                "idempotency_key": key,
                "order_id": order_id,
                "seq": seq,
                "kind": posting.get("kind"),
                "document": posting.get("document"),
                "amount": posting.get("amount"),
                "currency": posting.get("currency"),
                "data": posting.get("data"),
                "ack": f"ERP-{len(self.postings) + 1:06d}",
                "received_at": time.time(),
                "replays": 0,
            }
            self.postings[key] = booked
            self._save()
            return booked, True

    def _save(self) -> None:
        if self._store is None:
            return
        draft = self._store.with_name(f"{self._store.name}.{os.getpid()}")
        draft.write_text(json.dumps(list(self.postings.values()), indent=1))
        draft.replace(self._store)  # atomic: a reader never sees half a file


def create_erp_sim(
    secret: bytes,
    behaviour: Behaviour | None = None,
    store: Path | None = None,
    seed: int | None = None,
) -> FastAPI:
    """The simulated ERP as an ASGI app (`app.state.ledger`, `app.state.behaviour`)."""
    app = FastAPI(title="orderflow simulated ERP", docs_url=None, redoc_url=None)
    app.state.behaviour = behaviour or Behaviour()
    app.state.ledger = ledger = Ledger(store)
    rng = random.Random(seed)

    def now() -> Behaviour:
        current: Behaviour = app.state.behaviour
        return current

    def unsigned(request: Request, body: bytes) -> JSONResponse | None:
        problem = signature_problem(
            secret,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            body,
            time.time(),
        )
        return None if problem is None else JSONResponse({"error": problem}, status_code=401)

    @app.post("/postings")
    async def post_posting(request: Request) -> JSONResponse:
        body = await request.body()
        if (refusal := unsigned(request, body)) is not None:
            return refusal
        behaviour = now()
        if behaviour.down:
            ledger.unavailable += 1
            return JSONResponse({"error": "the ERP is down for maintenance"}, status_code=503)
        if behaviour.latency_ms:
            await asyncio.sleep(behaviour.latency_ms / 1000)
        key = request.headers.get(IDEMPOTENCY_HEADER)
        try:
            posting = json.loads(body)
        except ValueError:
            posting = None
        if not key or not isinstance(posting, dict) or posting.get("idempotency_key") != key:
            return JSONResponse({"error": f"no {IDEMPOTENCY_HEADER} matching the posting"}, 400)
        if rng.random() < behaviour.fail_rate:
            ledger.failed += 1
            return JSONResponse({"error": "simulated failure"}, status_code=500)
        text = body.decode(errors="replace")
        matched = [needle for needle in behaviour.refuse if needle and needle in text]
        if matched and key not in ledger.postings:
            ledger.refused += 1
            return JSONResponse(
                {"error": f"refused: the posting contains {matched[0]!r}"}, status_code=422
            )
        booked, _new = ledger.book(key, posting)
        return JSONResponse({"ack": booked["ack"], "replays": booked["replays"]})

    @app.get("/postings")
    async def list_postings(request: Request) -> JSONResponse:
        if (refusal := unsigned(request, b"")) is not None:
            return refusal
        return JSONResponse({"postings": list(ledger.postings.values())})

    @app.post("/control")
    async def control(change: Control) -> dict[str, Any]:
        app.state.behaviour = now().model_copy(update=change.model_dump(exclude_none=True))
        return status()

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return status()

    def status() -> dict[str, Any]:
        return {
            **now().model_dump(),
            "booked": len(ledger.postings),
            "replays": sum(p["replays"] for p in ledger.postings.values()),
            "refused": ledger.refused,
            "unavailable": ledger.unavailable,
            "failed": ledger.failed,
            "out_of_order": ledger.out_of_order,
        }

    return app
