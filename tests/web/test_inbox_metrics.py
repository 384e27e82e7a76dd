"""The inbox's own /metrics: its requests by route template and status (no token, no id)."""

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.workflows.test_telemetry import dashboard_metrics


async def test_the_inbox_counts_its_requests_by_route_and_status(inbox: str) -> None:
    async with httpx.AsyncClient(base_url=inbox) as http:
        assert (await http.get("/signin")).status_code == 200
        refused = await http.post("/signin", data={"user": "nobody", "token": "wrong"})
        assert refused.status_code == 401
        assert (await http.get("/link/not-a-real-token")).status_code == 410
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert "not-a-real-token" not in response.text  # the route template, never the token
    counts = {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
        if s.name == "orderflow_http_requests_total" and s.labels["service"] == "inbox"
    }
    assert counts == {
        ("GET", "/signin", "200"): 1,
        ("POST", "/signin", "401"): 1,
        ("GET", "/link/{token}", "410"): 1,
    }
    assert "orderflow_http_request_duration_seconds_bucket{" in response.text
    for name in dashboard_metrics("orderflow_http_"):  # what the dashboard draws
        assert f"{name}{{" in response.text or f"{name}_bucket{{" in response.text, name
