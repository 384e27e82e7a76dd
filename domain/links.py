"""Signed, expiring tokens: the inbox's session cookie and the approve/reject links in e-mails.

A token is `<payload>.<signature>`: the payload is URL-safe base64 of compact JSON, the
signature an HMAC-SHA256 of it under the server's secret. Pure (no I/O): the worker signs the
links it puts in e-mails, the inbox verifies them; that a link is used only once is the
inbox's job (a table of used link ids), not the token's.
"""

import base64
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

Purpose = Literal["session", "link"]


class TokenRefused(Exception):
    """A token that is malformed, forged, expired or meant for something else (one line)."""


class SignedClaim(BaseModel):
    """What a token vouches for: who, for what, until when, and a random id."""

    purpose: Purpose
    user: str
    expires: datetime
    id: str
    order: str | None = None
    csrf: str | None = None


def new_id() -> str:
    """A random identifier (128 bits) for a link or a session's CSRF token."""
    return secrets.token_urlsafe(16)


def sign(secret: bytes, claim: SignedClaim) -> str:
    payload = _b64(claim.model_dump_json(exclude_none=True).encode())
    return f"{payload}.{_b64(_mac(secret, payload))}"


def verify(secret: bytes, token: str, purpose: Purpose, now: datetime) -> SignedClaim:
    """The claim of a genuine, unexpired token for `purpose`.

    Raises:
        TokenRefused: with a one-line reason a person can act on.
    """
    payload, dot, signature = token.strip().partition(".")
    if not dot or not payload or not signature:
        raise TokenRefused("this link is not complete: copy the whole link from the e-mail")
    try:
        given = _unb64(signature)
        body: Any = json.loads(_unb64(payload))
    except (ValueError, UnicodeDecodeError):
        raise TokenRefused("this link is damaged: copy the whole link from the e-mail") from None
    if not hmac.compare_digest(given, _mac(secret, payload)):
        raise TokenRefused("this link was not issued by this orderflow (bad signature)")
    try:
        claim = SignedClaim.model_validate(body)
    except ValidationError:
        raise TokenRefused("this link is damaged: copy the whole link from the e-mail") from None
    if claim.purpose != purpose:
        raise TokenRefused("this token cannot be used here")
    if claim.expires <= now:
        what = "sign-in" if purpose == "session" else "link"
        raise TokenRefused(f"this {what} expired at {claim.expires:%Y-%m-%d %H:%M} UTC")
    return claim


def claim_for(
    purpose: Purpose, user: str, now: datetime, valid_for: timedelta, **extra: Any
) -> SignedClaim:
    return SignedClaim(purpose=purpose, user=user, expires=now + valid_for, id=new_id(), **extra)


def hash_secret(token: str) -> str:
    """How a sign-in token is stored: SHA-256 (the token is 256 random bits, not a password)."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(token: str, stored_hash: str | None) -> bool:
    return stored_hash is not None and hmac.compare_digest(hash_secret(token), stored_hash)


def _mac(secret: bytes, payload: str) -> bytes:
    return hmac.new(secret, payload.encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
