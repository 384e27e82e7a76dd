"""`orderflow inbox-token` and `orderflow serve` as an operator runs them."""

import signal
import subprocess

import httpx

from starter.stack import port_open
from tests.e2e.conftest import ORDERFLOW, free_port, orderflow, wait_until_listening


def test_tokens_are_issued_to_approvers_only_and_serve_stops_on_sigterm(
    cli_env: dict[str, str],
) -> None:
    assert orderflow("migrate", env=cli_env).returncode == 0
    assert orderflow("seed", env=cli_env).returncode == 0
    for args, message in {
        ("inbox-token", "nobody"): "error: no active approver 'nobody' (see `orderflow seed`)",
        ("inbox-token", "mia.manager", "--email", "mia"): "error: --email 'mia' is not an",
    }.items():
        refused = orderflow(*args, env=cli_env)
        assert refused.returncode == 1 and refused.stderr.startswith(message), refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    issued = orderflow("inbox-token", "mia.manager", "--email", "mia@example.com", env=cli_env)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.split(": ", 1)[1].splitlines()[0]

    port = free_port()
    serve = subprocess.Popen(
        [ORDERFLOW, "serve", "--port", str(port)],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_listening(serve, port, "the inbox")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            assert http.get("/").headers["location"].startswith("/signin")
            wrong = http.post("/signin", data={"user": "mia.manager", "token": "x"})
            assert wrong.status_code == 401 and "wrong token" in wrong.text
            right = http.post("/signin", data={"user": "mia.manager", "token": token})
            assert right.status_code == 303 and "orderflow_session" in right.cookies
            again = orderflow("inbox-token", "mia.manager", env=cli_env)  # replaces the old one
            assert again.returncode == 0
            stale = http.post("/signin", data={"user": "mia.manager", "token": token})
            assert stale.status_code == 401
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=30) in (0, 130)
        assert not port_open(port)
    finally:
        if serve.poll() is None:
            serve.kill()
