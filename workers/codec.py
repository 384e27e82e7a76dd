"""Payload encryption: the one data converter of clients, workers, replayers and tests.

Every payload (an order, an activity's input and result, an update's argument, a query's
answer, the summaries and details shown in the UI, failure messages) is sealed with AES-GCM
before it leaves the process; Temporal stores ciphertext only. Each payload names the key
that sealed it (metadata `encryption-key-id`), so keys rotate: a new key encrypts, the old
ones stay configured to decrypt what they sealed. Payloads without the encrypted encoding
(histories recorded before encryption, the replay goldens) pass through unchanged.

Keys: `ORDERFLOW_PAYLOAD_KEYS` ("id:base64key,id2:base64key", AES-128/192/256) with
`ORDERFLOW_PAYLOAD_KEY_ID` naming the one that encrypts (default: the last one listed); when
none are set, a key file made once under ORDERFLOW_HOME (mode 0600), so the CLI, the workers,
the demo and the codec server of one home agree. `ORDERFLOW_PAYLOAD_ENCRYPTION=false` turns
encryption off (decoding still works for payloads it can decrypt).
"""

import base64
import binascii
import dataclasses
import os
import secrets
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from workers.converter import PayloadConverter
from workers.settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
KEY_FILE = "payload-keys"


class PayloadKeyError(ValueError):
    """A key that is missing, malformed or does not open a payload; one line, says which."""


@dataclasses.dataclass(frozen=True)
class Keyring:
    """The configured keys by id, and the id of the one that encrypts."""

    current: str | None
    keys: Mapping[str, bytes]

    def __post_init__(self) -> None:
        if self.keys and self.current not in self.keys:
            raise PayloadKeyError(
                f"payload key id {self.current!r} is not among the configured keys "
                f"({', '.join(sorted(self.keys)) or 'none'})"
            )

    def spec(self) -> str:
        """The keys as ORDERFLOW_PAYLOAD_KEYS spells them."""
        return ",".join(f"{kid}:{base64.b64encode(key).decode()}" for kid, key in self.keys.items())


def parse_keys(text: str) -> dict[str, bytes]:
    """`id:base64key` entries separated by commas or lines, in order (later: newer)."""
    keys: dict[str, bytes] = {}
    for entry in text.replace("\n", ",").split(","):
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        kid, sep, encoded = entry.partition(":")
        kid = kid.strip()
        if not sep or not kid:
            raise PayloadKeyError(
                "payload keys are written id:base64key (e.g. k2:AAAA...), comma-separated"
            )
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except binascii.Error:
            raise PayloadKeyError(f"payload key {kid!r} is not valid base64") from None
        if len(key) not in (16, 24, 32):
            raise PayloadKeyError(
                f"payload key {kid!r} has {len(key)} bytes; AES-GCM wants 16, 24 or 32"
            )
        keys[kid] = key
    return keys


def new_key_entry(key_id: str) -> str:
    """A fresh random 256-bit key as one `id:base64key` entry."""
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def keyring(settings: Settings, *, create: bool = True) -> Keyring:
    """The configured keys: ORDERFLOW_PAYLOAD_KEYS, else the key file under home (made now
    unless `create` is false: then an empty keyring when there is none)."""
    if settings.payload_keys:
        keys = parse_keys(settings.payload_keys)
        where = "ORDERFLOW_PAYLOAD_KEYS"
    else:
        path = settings.home / KEY_FILE
        if not create and not path.exists():
            return Keyring(None, {})
        keys = parse_keys(settings.secret_file(KEY_FILE, lambda: new_key_entry("local-1") + "\n"))
        where = str(path)
    if not keys:
        raise PayloadKeyError(f"{where} names no payload key")
    return Keyring(settings.payload_key_id or list(keys)[-1], keys)


class EncryptionCodec(PayloadCodec):
    """AES-GCM with a random 96-bit nonce per payload; the key id travels in the metadata."""

    def __init__(self, ring: Keyring, *, encrypt: bool = True) -> None:
        self._current = ring.current if encrypt else None
        self._ciphers = {kid: AESGCM(key) for kid, key in ring.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if self._current is None:
            return list(payloads)  # encryption off: written plain
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        kid = self._current or ""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[kid].encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: kid.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # never encrypted: written before encryption, or with it off
        kid = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise PayloadKeyError(
                f"a payload is encrypted with key id {kid!r}, which is not configured "
                f"(configured: {', '.join(sorted(self._ciphers))}; keep old keys in "
                "ORDERFLOW_PAYLOAD_KEYS after a rotation)"
            )
        data = payload.data
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], None)
        except InvalidTag:
            raise PayloadKeyError(
                f"a payload does not open with key {kid!r} (another key under that id, "
                "or the payload was altered)"
            ) from None
        return Payload.FromString(plain)


def data_converter(settings: Settings) -> DataConverter:
    """THE data converter: pydantic v2 models (type adapters shared by the process:
    workers.converter), failure messages moved into an encoded payload,
    and the payload codec: clients, workers (through their client), replayers, the codec
    server and the tests all take theirs from here.

    With encryption off, payloads are written plain and those already encrypted still open
    with the keys configured (or the key file, when one exists)."""
    ring = keyring(settings, create=settings.payload_encryption)
    return dataclasses.replace(
        pydantic_data_converter,
        payload_converter_class=PayloadConverter,
        payload_codec=EncryptionCodec(ring, encrypt=settings.payload_encryption)
        if ring.keys
        else None,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def payload_env(settings: Settings) -> dict[str, str]:
    """ORDERFLOW_PAYLOAD_* for a child process (a worker, a CLI run) that must use the same
    keys as this one, whatever its ORDERFLOW_HOME."""
    ring = keyring(settings, create=settings.payload_encryption)
    env = {"ORDERFLOW_PAYLOAD_ENCRYPTION": str(settings.payload_encryption).lower()}
    if ring.keys:
        env["ORDERFLOW_PAYLOAD_KEYS"] = ring.spec()
        env["ORDERFLOW_PAYLOAD_KEY_ID"] = ring.current or ""
    return env
