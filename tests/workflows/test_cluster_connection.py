"""Pointing orderflow at a real cluster or Temporal Cloud: TLS / API key settings, and a worker
that refuses a namespace without the order search attributes."""

import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import TLSConfig

from starter.stack import register_search_attributes
from tests.e2e.conftest import ORDERFLOW
from workers.client import (
    ConnectionSettingsError,
    SearchAttributesMissing,
    require_search_attributes,
    tls_config,
)
from workers.settings import Settings


def test_tls_follows_the_settings(tmp_path: Path) -> None:
    assert tls_config(Settings()) is False  # the dev server: plaintext
    assert tls_config(Settings(temporal_tls=True)) is True  # system CAs
    assert tls_config(Settings(temporal_api_key="key")) is True  # Temporal Cloud: TLS + key
    cert, key, ca = (tmp_path / n for n in ("client.pem", "client.key", "ca.pem"))
    for path in (cert, key, ca):
        path.write_bytes(f"-----{path.name}-----".encode())
    mtls = tls_config(
        Settings(
            temporal_tls_cert=cert,
            temporal_tls_key=key,
            temporal_tls_ca=ca,
            temporal_tls_server_name="orders.a1b2c.tmprl.cloud",
        )
    )
    assert isinstance(mtls, TLSConfig)
    assert mtls.client_cert == b"-----client.pem-----"
    assert mtls.client_private_key == b"-----client.key-----"
    assert mtls.server_root_ca_cert == b"-----ca.pem-----"
    assert mtls.domain == "orders.a1b2c.tmprl.cloud"
    with pytest.raises(ConnectionSettingsError, match="TLS_CERT and ORDERFLOW_TEMPORAL_TLS_KEY"):
        tls_config(Settings(temporal_tls_cert=cert))
    with pytest.raises(ConnectionSettingsError, match="ORDERFLOW_TEMPORAL_TLS_KEY: cannot read"):
        tls_config(Settings(temporal_tls_cert=cert, temporal_tls_key=tmp_path / "missing.key"))


def test_a_worker_with_half_an_mtls_setting_says_so_in_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "ORDERFLOW_HOME": str(tmp_path),
        "ORDERFLOW_TEMPORAL_ADDRESS": "orders.a1b2c.tmprl.cloud:7233",
        "ORDERFLOW_TEMPORAL_TLS_CERT": str(tmp_path / "client.pem"),
    }
    done = subprocess.run(
        [ORDERFLOW, "worker"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "error: ORDERFLOW_TEMPORAL_TLS_CERT and ORDERFLOW_TEMPORAL_TLS_KEY go together (mTLS)"
    )


async def test_a_namespace_without_the_search_attributes_is_refused_until_setup(
    client: Client,
) -> None:
    namespace = f"bare-{uuid.uuid4().hex[:8]}"
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace,
            workflow_execution_retention_period=Duration(
                seconds=int(timedelta(days=1).total_seconds())
            ),
        )
    )
    with pytest.raises(SearchAttributesMissing) as refused:
        await require_search_attributes(client, namespace)
    assert str(refused.value).startswith(
        f"namespace {namespace!r} lacks the search attributes AwaitingApproverTier, CustomerId"
    )
    assert "run `orderflow setup`" in str(refused.value)
    assert "OrderStatus" in await register_search_attributes(client, namespace)
    await require_search_attributes(client, namespace)  # now it starts
