"""ERP adapters: where postings go (a signed JSON webhook) and what the ERP's answers mean.

The contract with the ERP (what `orderflow erp-sim` implements):

- `POST {url}/postings`, a JSON posting, headers `Idempotency-Key`, `X-Orderflow-Timestamp`
  (Unix seconds) and `X-Orderflow-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`
  under the shared secret. 2xx `{"ack": "<the ERP's reference>"}`: booked. 409: booked before
  under this key (a replay), acknowledged too. Any other 4xx: refused, for good.
  5xx, 408, 429, a timeout or no connection: not now, try again.
- `GET {url}/postings`, signed the same way over an empty body: `{"postings": [...]}`, every
  posting the ERP acknowledged (`orderflow reconcile` compares them with orderflow's books).
"""

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from http.client import HTTPException
from typing import Any, Protocol

from activities.db.models import ErpPosting
from domain.erp import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Acknowledged,
    signature,
)


class ErpUnavailable(Exception):
    """The ERP could not take a posting now; it is tried again later.

    `outage`: the ERP as a whole is away (no connection, timeout, 502/503/504, 429, our
    credentials refused), not this posting's fault: the dispatcher backs off as a whole and
    the posting keeps its place. Otherwise (500 and the like) the posting backs off alone.
    """

    def __init__(self, message: str, *, outage: bool) -> None:
        super().__init__(message)
        self.outage = outage


class PostingRefused(Exception):
    """The ERP refused this posting for good (a 4xx): it goes dead until a person retries it."""


class ErpAdapter(Protocol):
    """An ERP that books postings, each at most once per idempotency key."""

    @property
    def url(self) -> str:
        """Where it is (for people)."""
        ...

    def deliver(self, posting: ErpPosting) -> str:
        """Book the posting; the ERP's reference for it.

        Raises:
            ErpUnavailable: try again later.
            PostingRefused: the ERP will not book it.
        """
        ...

    def acknowledged(self) -> list[Acknowledged]:
        """Every posting the ERP has booked."""
        ...


def posting_body(posting: ErpPosting) -> bytes:
    """The JSON the ERP receives for a posting (amounts as decimal strings)."""
    return json.dumps(
        {
            "idempotency_key": posting.idempotency_key,
            "order_id": posting.order_id,
            "seq": posting.seq,
            "kind": posting.kind,
            "document": posting.document,
            "amount": str(posting.amount),
            "currency": posting.currency,
            "created_at": posting.created_at.isoformat(),
            "data": posting.payload,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


class WebhookErp:
    """An ERP reached over HTTP: signed JSON to `{url}/postings`."""

    def __init__(
        self, url: str, secret: bytes, timeout: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._url = url.rstrip("/")
        self._secret = secret
        self._timeout = timeout
        self._clock = clock

    @property
    def url(self) -> str:
        return self._url

    def deliver(self, posting: ErpPosting) -> str:
        status, answer = self._call(
            "POST", posting_body(posting), {IDEMPOTENCY_HEADER: posting.idempotency_key}
        )
        if 200 <= status < 300 or status == 409:  # 409: booked before under this key
            return str(_json(answer).get("ack") or ("duplicate" if status == 409 else "ok"))
        reason = f"{status} {_reason(answer)}"
        if status in (401, 403):
            raise ErpUnavailable(f"the ERP refuses our credentials: {reason}", outage=True)
        if status in (408, 429) or status >= 500:
            raise ErpUnavailable(reason, outage=status in (429, 502, 503, 504))
        if 400 <= status < 500:
            raise PostingRefused(reason)
        raise ErpUnavailable(f"unexpected answer {reason}", outage=False)

    def acknowledged(self) -> list[Acknowledged]:
        status, answer = self._call("GET", b"", {})
        if status != 200:
            raise ErpUnavailable(f"{status} {_reason(answer)}", outage=True)
        try:
            return [
                Acknowledged(
                    key=p["idempotency_key"],
                    order_id=p.get("order_id", ""),
                    kind=p.get("kind", ""),
                    document=p.get("document", ""),
                    amount=Decimal(str(p["amount"])),
                    currency=p["currency"],
                    ack=str(p.get("ack", "")),
                )
                for p in _json(answer)["postings"]
            ]
        except (KeyError, TypeError, ArithmeticError, ValueError) as error:
            raise ErpUnavailable(
                f"the ERP's list of postings is malformed: {error!r}", outage=True
            ) from None

    def _call(self, method: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        timestamp = int(self._clock())
        request = urllib.request.Request(
            f"{self._url}/postings",
            data=body if method == "POST" else None,
            method=method,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "orderflow-erp-handoff",
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: signature(self._secret, timestamp, body),
                **headers,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as answer:
            with answer:
                return answer.code, answer.read()
        except urllib.error.URLError as error:
            raise ErpUnavailable(f"cannot reach {self._url}: {error.reason}", outage=True) from None
        except TimeoutError:
            raise ErpUnavailable(
                f"{self._url} did not answer within {self._timeout:g} s", outage=True
            ) from None
        except (OSError, HTTPException) as error:
            raise ErpUnavailable(f"{self._url}: {error!r}", outage=True) from None


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _reason(body: bytes) -> str:
    """What the ERP said, short: its JSON `error`/`detail`, else its text."""
    data = _json(body)
    text = data.get("error") or data.get("detail") or body.decode(errors="replace")
    return str(text).strip()[:300]
