"""The intake channels as configured: who may send, how they prove it, what format they speak.

Channels are data (a JSON list of `ChannelConfig`, ORDERFLOW_CHANNELS_FILE; the bundled
`starter/demo/channels.json` otherwise). Secrets are never in that file: API keys are issued
by `orderflow api-key` and stored as SHA-256 only; a webhook's HMAC secret comes from
ORDERFLOW_CHANNEL_SECRETS ("shop:secret,...") or a file made once under the home directory.
"""

import base64
import hashlib
import hmac
import json
import secrets
from pathlib import Path

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from activities.db.models import ApiKey, utcnow
from domain.channels.records import ChannelConfig
from domain.links import hash_secret
from starter.orders import UserError
from workers.settings import Settings

BUNDLED = Path(__file__).parent / "demo" / "channels.json"


def load_channels(settings: Settings) -> dict[str, ChannelConfig]:
    """Every configured channel by name.

    Raises:
        UserError: the file is missing, not JSON, or a channel is malformed (one line).
    """
    path = settings.channels_file or BUNDLED
    try:
        raw = json.loads(path.read_text())
        found = TypeAdapter(list[ChannelConfig]).validate_python(raw)
    except OSError as error:
        raise UserError(f"channels file {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise UserError(f"channels file {path}: not JSON: {error}") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(f"channels file {path}: {where}: {first['msg']}") from None
    names = [channel.name for channel in found]
    if len(set(names)) != len(names):
        raise UserError(f"channels file {path}: a channel name is used twice")
    return {channel.name: channel for channel in found}


def channel_named(settings: Settings, name: str) -> ChannelConfig:
    """One channel by name; a clear error listing the known ones otherwise."""
    return channel_in(load_channels(settings), name)


def channel_in(channels: dict[str, ChannelConfig], name: str) -> ChannelConfig:
    """One of the loaded channels by name; a clear error listing the known ones otherwise."""
    if name not in channels:
        raise UserError(f"unknown channel {name!r} (known: {', '.join(sorted(channels))})")
    return channels[name]


def webhook_secret(settings: Settings, channel: str) -> bytes:
    """The shared secret a channel signs its webhooks with (HMAC-SHA256)."""
    for entry in (settings.channel_secrets or "").split(","):
        name, _, secret = entry.partition(":")
        if name.strip() == channel and secret.strip():
            return secret.strip().encode()
    made = settings.secret_file(f"channel-{channel}.secret", lambda: secrets.token_urlsafe(32))
    return made.strip().encode()


def webhook_signature(secret: bytes, body: bytes) -> str:
    """Shopify's scheme: base64 of the HMAC-SHA256 of the raw body (X-Shopify-Hmac-Sha256)."""
    return base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()


def signature_matches(secret: bytes, body: bytes, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(webhook_signature(secret, body), sent or "")


def issue_api_key(engine: Engine, channel: str, label: str) -> str:
    """A new API key for a channel (shown once; stored as its hash)."""
    key = f"of_{channel}_{secrets.token_urlsafe(24)}"
    with Session(engine) as session, session.begin():
        session.add(ApiKey(key_hash=hash_secret(key), channel=channel, label=label))
    return key


def key_channel(engine: Engine, key: str) -> str | None:
    """The channel a live API key belongs to (None: unknown or revoked)."""
    with Session(engine) as session:
        row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_secret(key)))
    return row.channel if row is not None and row.revoked_at is None else None


def revoke_api_keys(engine: Engine, channel: str) -> int:
    """Revoke every key of a channel; how many were live."""
    with Session(engine) as session, session.begin():
        live = session.scalars(
            select(ApiKey).where(ApiKey.channel == channel, ApiKey.revoked_at.is_(None))
        ).all()
        for row in live:
            row.revoked_at = utcnow()
        return len(live)
