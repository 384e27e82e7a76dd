"""The payload codec (workers/codec.py): AES-GCM, key ids, rotation, the key file, off switch."""

import base64
import os
import stat
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload

from workers.codec import (
    ENCODING,
    KEY_ID,
    EncryptionCodec,
    Keyring,
    PayloadKeyError,
    data_converter,
    keyring,
    new_key_entry,
    parse_keys,
    payload_env,
)
from workers.settings import Settings

KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = base64.b64encode(b"B" * 32).decode()


def settings(tmp_path: Path, **knobs: object) -> Settings:
    values: dict[str, object] = {"home": tmp_path, "payload_keys": None, "payload_key_id": None}
    return Settings(**{**values, **knobs})  # type: ignore[arg-type]


async def test_a_payload_is_sealed_with_the_current_key_and_opens_again(tmp_path: Path) -> None:
    converter = data_converter(settings(tmp_path, payload_keys=f"a:{KEY_A}"))
    [sealed] = await converter.encode(["Anna de Vries, Prinsengracht 263"])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == b"a"
    assert b"Anna" not in sealed.data and b"Prinsengracht" not in sealed.data
    assert await converter.decode([sealed], [str]) == ["Anna de Vries, Prinsengracht 263"]
    [again] = await converter.encode(["Anna de Vries, Prinsengracht 263"])
    assert again.data[:12] != sealed.data[:12]  # a fresh nonce every time


async def test_plain_payloads_pass_through_decoding(tmp_path: Path) -> None:
    """Histories written before encryption (the replay goldens) still decode."""
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"hello"')
    converter = data_converter(settings(tmp_path, payload_keys=f"a:{KEY_A}"))
    assert await converter.decode([plain], [str]) == ["hello"]


async def test_rotation_keeps_old_payloads_readable_until_the_old_key_is_removed(
    tmp_path: Path,
) -> None:
    old = data_converter(settings(tmp_path, payload_keys=f"a:{KEY_A}"))
    [written_with_a] = await old.encode([{"order": "t-1"}])

    rotated = data_converter(
        settings(tmp_path, payload_keys=f"a:{KEY_A},b:{KEY_B}", payload_key_id="b")
    )
    [written_with_b] = await rotated.encode([{"order": "t-2"}])
    assert written_with_b.metadata[KEY_ID] == b"b"
    assert await rotated.decode([written_with_a, written_with_b], [dict, dict]) == [
        {"order": "t-1"},
        {"order": "t-2"},
    ]

    without_a = data_converter(settings(tmp_path, payload_keys=f"b:{KEY_B}"))
    with pytest.raises(PayloadKeyError) as refused:
        await without_a.decode([written_with_a], [dict])
    message = str(refused.value)
    assert "\n" not in message
    assert "key id 'a', which is not configured" in message


async def test_the_last_listed_key_encrypts_unless_one_is_named(tmp_path: Path) -> None:
    ring = keyring(settings(tmp_path, payload_keys=f"a:{KEY_A}\nb:{KEY_B}"))
    assert ring.current == "b"
    named = keyring(settings(tmp_path, payload_keys=f"a:{KEY_A},b:{KEY_B}", payload_key_id="a"))
    assert named.current == "a"


async def test_a_tampered_payload_or_a_different_key_under_the_same_id_is_refused(
    tmp_path: Path,
) -> None:
    codec = EncryptionCodec(Keyring("a", {"a": b"A" * 32}))
    sealed = codec.encrypt(Payload(metadata={"encoding": b"json/plain"}, data=b'"x"'))
    flipped = Payload(
        metadata=sealed.metadata, data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    )
    with pytest.raises(PayloadKeyError, match="does not open with key 'a'"):
        codec.decrypt(flipped)
    other = EncryptionCodec(Keyring("a", {"a": b"Z" * 32}))
    with pytest.raises(PayloadKeyError, match="does not open with key 'a'"):
        other.decrypt(sealed)


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("nokey", "written id:base64key"),
        ("a:not base64!", "not valid base64"),
        (f"a:{base64.b64encode(b'short').decode()}", "has 5 bytes"),
    ],
)
def test_malformed_keys_are_refused_in_one_line(spec: str, problem: str) -> None:
    with pytest.raises(PayloadKeyError, match=problem):
        parse_keys(spec)


def test_a_current_key_id_that_is_not_configured_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PayloadKeyError, match="'c' is not among the configured keys"):
        keyring(settings(tmp_path, payload_keys=f"a:{KEY_A}", payload_key_id="c"))


async def test_without_keys_a_key_file_is_made_once_under_home_and_shared(
    tmp_path: Path,
) -> None:
    first = keyring(settings(tmp_path))
    path = tmp_path / "payload-keys"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert keyring(settings(tmp_path)) == first  # a second process of the same home agrees
    [sealed] = await data_converter(settings(tmp_path)).encode(["x"])
    assert await data_converter(settings(tmp_path)).decode([sealed], [str]) == ["x"]
    # a child process with another home gets the same keys through its environment
    env = payload_env(settings(tmp_path))
    child = Settings(
        home=tmp_path / "elsewhere",
        payload_keys=env["ORDERFLOW_PAYLOAD_KEYS"],
        payload_key_id=env["ORDERFLOW_PAYLOAD_KEY_ID"],
    )
    assert await data_converter(child).decode([sealed], [str]) == ["x"]
    assert not (tmp_path / "elsewhere" / "payload-keys").exists()


async def test_encryption_off_writes_plain_and_still_reads_what_was_encrypted(
    tmp_path: Path,
) -> None:
    [sealed] = await data_converter(settings(tmp_path, payload_keys=f"a:{KEY_A}")).encode(["x"])
    off = data_converter(settings(tmp_path, payload_keys=f"a:{KEY_A}", payload_encryption=False))
    [plain] = await off.encode(["y"])
    assert plain.metadata["encoding"] == b"json/plain"
    assert await off.decode([sealed, plain], [str, str]) == ["x", "y"]
    # off with no keys and no key file: plain, and no key file is made
    bare = data_converter(settings(tmp_path / "bare", payload_encryption=False))
    assert bare.payload_codec is None
    assert not (tmp_path / "bare" / "payload-keys").exists()


async def test_failure_messages_are_encoded_too(tmp_path: Path) -> None:
    """An error's message can quote an address (a validation problem): it is a payload."""
    from temporalio.api.failure.v1 import Failure
    from temporalio.exceptions import ApplicationError

    converter = data_converter(settings(tmp_path, payload_keys=f"a:{KEY_A}"))
    failure = Failure()
    await converter.encode_failure(
        ApplicationError("postal code 'Geheim 1' is not valid for NL"), failure
    )
    assert b"Geheim" not in failure.SerializeToString()
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    decoded = await converter.decode_failure(failure)
    assert str(decoded) == "postal code 'Geheim 1' is not valid for NL"


def test_new_key_entries_parse() -> None:
    entry = new_key_entry("k2")
    assert list(parse_keys(entry)) == ["k2"]
    assert len(parse_keys(entry)["k2"]) == 32
