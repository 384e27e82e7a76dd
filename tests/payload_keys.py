"""The test session's payload key (workers/codec.py).

One key for the whole session: the session's client (so every in-process worker) encrypts
with it, and every `orderflow` process a test starts is given it (tests/e2e `cli_env`,
`payload_env`), so both sides of a test open each other's payloads. tests/conftest.py puts it
into the environment too, so any `Settings()` a test makes agrees.
"""

TEST_PAYLOAD_KEY_ID = "test-1"
TEST_PAYLOAD_KEY = "dGVzdC1wYXlsb2FkLWtleS1vZi1vcmRlcmZsb3ctMzI="  # 32 bytes, tests only
TEST_PAYLOAD_ENV = {
    "ORDERFLOW_PAYLOAD_ENCRYPTION": "true",
    "ORDERFLOW_PAYLOAD_KEYS": f"{TEST_PAYLOAD_KEY_ID}:{TEST_PAYLOAD_KEY}",
    "ORDERFLOW_PAYLOAD_KEY_ID": TEST_PAYLOAD_KEY_ID,
}
