"""The one way to reach Temporal: address, namespace and the data converter (pydantic v2
models, payloads encrypted by workers/codec.py)."""

from pathlib import Path

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from workers.codec import data_converter
from workers.settings import Settings
from workers.telemetry import client_interceptors


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """A client that speaks pydantic v2 models on the wire, encrypted (workers/codec.py).

    `runtime`: the SDK runtime (workers.telemetry.metrics_runtime: Prometheus metrics);
    traced over OTLP when ORDERFLOW_OTLP_ENDPOINT is set (workers.telemetry).
    """
    return await Client.connect(
        settings.resolved_temporal_address,
        namespace=settings.namespace,
        data_converter=data_converter(settings),
        interceptors=client_interceptors(settings),
        runtime=runtime,
        tls=tls_config(settings),
        api_key=settings.temporal_api_key,
    )


class ConnectionSettingsError(ValueError):
    """The TLS / API key settings cannot work (one line naming the setting)."""


def tls_config(settings: Settings) -> TLSConfig | bool:
    """TLS as the settings ask: mTLS with a client certificate and key, a private CA, plain
    TLS with the system's CAs (ORDERFLOW_TEMPORAL_TLS or an API key), or none (the dev server).
    """
    cert, key, ca = settings.temporal_tls_cert, settings.temporal_tls_key, settings.temporal_tls_ca
    if (cert is None) != (key is None):
        raise ConnectionSettingsError(
            "ORDERFLOW_TEMPORAL_TLS_CERT and ORDERFLOW_TEMPORAL_TLS_KEY go together (mTLS)"
        )
    if cert is None and ca is None:
        return bool(settings.temporal_tls or settings.temporal_api_key)
    return TLSConfig(
        client_cert=_read(cert, "ORDERFLOW_TEMPORAL_TLS_CERT") if cert else None,
        client_private_key=_read(key, "ORDERFLOW_TEMPORAL_TLS_KEY") if key else None,
        server_root_ca_cert=_read(ca, "ORDERFLOW_TEMPORAL_TLS_CA") if ca else None,
        domain=settings.temporal_tls_server_name,
    )


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConnectionSettingsError(f"{setting}: cannot read {path}: {error.strerror}") from None


class SearchAttributesMissing(RuntimeError):
    """The namespace lacks the order search attributes (one line saying how to add them)."""


async def missing_search_attributes(client: Client, namespace: str) -> dict[str, int]:
    """The order search attributes the namespace does not have yet: name -> indexed type."""
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    from workflows.search import ALL

    known = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return {
        key.name: int(key.indexed_value_type)
        for key in ALL
        if key.name not in known.custom_attributes
    }


async def require_search_attributes(client: Client, namespace: str) -> None:
    """Refuse to start a worker on a namespace without the order search attributes (its orders
    would fail every status upsert). A server that does not let this identity list them
    (some Temporal Cloud roles) is trusted: the check is skipped."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        missing = await missing_search_attributes(client, namespace)
    except RPCError as error:
        if error.status in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED):
            return
        raise
    if missing:
        raise SearchAttributesMissing(
            f"namespace {namespace!r} lacks the search attributes {', '.join(sorted(missing))}: "
            "run `orderflow setup` (or add them with `temporal operator search-attribute create`"
            " / tcld on Temporal Cloud)"
        )
