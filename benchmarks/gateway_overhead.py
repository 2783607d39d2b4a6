"""What the gateway costs: the same endpoints directly, through the gateway (per serving model) and through nginx.

    .venv/bin/python benchmarks/gateway_overhead.py [--requests 300] [--seconds 2] [--rounds 5]

Starts user_service and loan_service under gunicorn (2 workers, as manage_all
runs them) on SQLite with 2,000 seeded loans, then, all at once, the gateway
in each candidate serving model with every edge feature on (JWT check, rate
limits, metrics, JSON access log; rows with the buckets in Redis, leased and not, and one
with the gateway tracing every request to an OTLP sink, benchmarks/proxy_candidates/otlp_sink.py), bare
Ninja proxy views per HTTP client (benchmarks/proxy_candidates/app.py), and
nginx (`proxy_pass`, keep-alive) as the reference proxy when installed.
With nginx and Redis, two prototype rows of a split design: nginx forwards
every request itself after asking the gateway's edge checks with
`auth_request` (benchmarks/proxy_candidates/edge_check.py), once per request
or with the check's answer cached 1 s per credentials (limits then in nginx).
For `GET /api/user/profile` and a page of 20 of the admin loan list:
  * one connection: p50 / p99 of sequential requests, the targets interleaved
    request by request (in a new random order each round), so the load of
    this shared machine drifts over all of them alike;
  * 32 connections: `wrk -c32` (when installed), every target in turn (in a
    new random order each round), in --rounds rounds; the median round's
    requests/s, p50 and p99.
Every process is stopped at the end, also on failure. The machine has 2 cores
shared by the client, the proxies, the services and other people's work:
figures are noisy; compare the ratios of one run, not figures across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis
import urllib3

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
PASSWORD = "bench-Secret-2026"
DIRECT = "direct (the service itself)"
NGINX = "nginx proxy_pass (reference)"
GATEWAY = "gateway_project.wsgi:application"
APP = "benchmarks.proxy_candidates.app:application"
EDGE_CHECKED = "prototype: nginx forwards, gateway checks each"
EDGE_CACHED = "prototype: nginx forwards, check cached 1 s"
EDGE_CHECK_ENV = {"DJANGO_SETTINGS_MODULE": "benchmarks.proxy_candidates.edge_check_settings", "NUM_PROXIES": "1"}
PATHS = {"profile": "/api/user/profile", "loan list": "/api/loan/list-loans-admin-agent?page_size=20"}


def gunicorn(app: str, port: int, *extra: str) -> list[str]:
    return [str(BIN / "gunicorn"), app, "--bind", f"127.0.0.1:{port}", "--workers", "2", *extra]


def granian(app: str, port: int) -> list[str]:
    options = ["--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    return [str(BIN / "granian"), *options, "--blocking-threads", "8", "--log-level", "warning", app]


def uvicorn(app: str, port: int) -> list[str]:
    options = ["--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--loop", "uvloop", "--http", "httptools"]
    return [str(BIN / "uvicorn"), app, *options, "--log-level", "warning", "--no-access-log"]


def gthread(app: str, port: int, *extra: str) -> list[str]:
    return gunicorn(app, port, "--worker-class", "gthread", *extra, "--threads", "8")  # a later class wins


DEADLINES = ("--worker-class", "gateway_project.worker.GatewayThreadWorker")  # gthread with a header-read deadline


Argv = Callable[[int], list[str]]
CONFIG = ("--config", str(ROOT / "gateway_project" / "gunicorn.conf.py"))  # as manage_all: metrics of all workers
GATEWAYS: dict[str, tuple[Argv, dict[str, str]]] = {
    "gateway: gunicorn gthread (chosen)": (lambda port: gthread(GATEWAY, port, *CONFIG, *DEADLINES), {}),
    "gateway: plain gthread, no header deadline": (lambda port: gthread(GATEWAY, port, *CONFIG), {}),
    "gateway: gunicorn gevent": (
        lambda port: gunicorn(GATEWAY, port, *CONFIG, "--worker-class", "gevent", "--worker-connections", "200"),
        {},
    ),
    "gateway: granian WSGI": (lambda port: granian(GATEWAY, port), {}),
}
CANDIDATES: dict[str, tuple[str, Argv]] = {
    "bare: sync view + urllib3, gunicorn gthread": ("/sync-urllib3", lambda port: gthread(APP, port)),
    "bare: sync view + urllib3, granian WSGI": ("/sync-urllib3", lambda port: granian(APP, port)),
    "bare: sync view + httptools, gunicorn gthread": ("/sync-httptools", lambda port: gthread(APP, port)),
    "bare: async view + httpx, uvicorn": ("/async-httpx", lambda port: uvicorn(APP, port)),
    "bare: async view + aiohttp, uvicorn": ("/async-aiohttp", lambda port: uvicorn(APP, port)),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


class Processes:
    """Every process this run starts, each in its own session, so all of them can be stopped."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen] = []

    def start(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        out = subprocess.DEVNULL
        self.running.append(subprocess.Popen(argv, cwd=cwd, env=env, start_new_session=True, stdout=out, stderr=out))

    def wait_healthy(self, url: str) -> None:
        pool = urllib3.PoolManager(retries=False)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if pool.request("GET", url, timeout=2).status == 200:
                    return
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"not healthy: {url}")

    def stop_all(self) -> None:
        for process in self.running:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def one_connection(targets: dict[str, str], token: str, count: int) -> dict[str, dict[str, float]]:
    """p50 / p99 in ms of sequential requests, one kept-alive connection per target, targets interleaved."""
    headers = {"Authorization": f"Bearer {token}"}
    pools = {label: urllib3.PoolManager(maxsize=1) for label in targets}
    samples: dict[str, list[float]] = {label: [] for label in targets}
    for round_number in range(count + 20):  # the first 20 rounds warm up
        order = list(targets)
        random.shuffle(order)
        for label in order:
            started = time.perf_counter()
            response = pools[label].request("GET", targets[label], headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status == 200, (label, response.status, response.data[:200])
            if round_number >= 20:
                samples[label].append(elapsed)
    return {label: percentiles(values) for label, values in samples.items()}


def edge_refuses_forged_token(url: str, token: str) -> None:
    """A token with a changed signature gets nginx's own 401 (the edge check refused it; no service answered)."""
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    for _ in range(2):  # the second from the cache, in the cached prototype
        response = urllib3.request("GET", url, headers={"Authorization": f"Bearer {forged}"})
        assert response.status == 401, (url, response.status)
        assert b"nginx" in response.data, (url, response.data[:200])  # nginx's page, not a service's envelope
    assert urllib3.request("GET", url, headers={"Authorization": f"Bearer {token}"}).status == 200


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50": ordered[len(ordered) // 2], "p99": ordered[max(0, int(len(ordered) * 0.99) - 1)]}


def wrk(url: str, token: str, seconds: int) -> dict[str, float]:
    argv = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "-H", f"Authorization: Bearer {token}", url]
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors at {url}:\n{output}")

    def millis(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", output).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    return {"rps": rps, "p50": millis("50%"), "p99": millis("99%")}


def many_connections(targets: dict[str, str], token: str, seconds: int, rounds: int) -> dict[str, dict] | None:
    """32 connections with wrk, each target in turn per round; the median round of each target."""
    if not shutil.which("wrk"):
        return None
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in targets}
    for _ in range(rounds):
        order = list(targets)
        random.shuffle(order)  # no target always follows the same one
        for label in order:
            runs[label].append(wrk(targets[label], token, seconds))
    return {label: sorted(values, key=lambda run: run["rps"])[len(values) // 2] for label, values in runs.items()}


NGINX_PROXY = 'proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;'


def nginx_upstreams(upstreams: dict[str, int]) -> str:
    """An `upstream` block per name, kept-alive connections to 127.0.0.1:port."""
    return "\n".join(f"upstream {name} {{ server 127.0.0.1:{p}; keepalive 64; }}" for name, p in upstreams.items())


def nginx_temp_paths(folder: Path) -> str:
    """Every temp path in `folder`, so nginx writes nothing outside the run's folder."""
    return " ".join(f"{kind}_temp_path {folder};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))


def nginx_config(folder: Path, port: int, upstreams: dict[str, int]) -> Path:
    proxy = NGINX_PROXY
    blocks = nginx_upstreams(upstreams)
    temp = nginx_temp_paths(folder)
    config = folder / "nginx.conf"
    config.write_text(f"""
worker_processes 2;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off; {temp}
  {blocks}
  server {{
    listen 127.0.0.1:{port};
    location /api/user/ {{ proxy_pass http://user; {proxy} }}
    location /api/loan/ {{ proxy_pass http://loan; {proxy} }}
  }}
}}
""")
    return config


def nginx_edge_config(folder: Path, port: int, upstreams: dict[str, int], *, cached: bool) -> Path:
    """Prototype: nginx forwards every request itself after asking the gateway's checks (`auth_request`).

    `cached`: a check's 200 is remembered 1 s per method and credentials (the gateway's own token memory lasts
    GATEWAY_TOKEN_CACHE_SECONDS), and the per-client limit moves into nginx (`limit_req`, per nginx instance, not
    shared across replicas); uncached, every request is checked, its limits in Redis as the gateway's are.
    """
    proxy = NGINX_PROXY
    forward = (
        f"auth_request /_check; auth_request_set $forward_auth $upstream_http_x_forward_authorization; {proxy}"
        " proxy_set_header X-Correlation-ID $request_id; proxy_set_header X-Forwarded-For $remote_addr;"
        " proxy_set_header Authorization $upstream_authorization;"  # an API key's token in place of the key
    )
    blocks = nginx_upstreams(upstreams)
    temp = nginx_temp_paths(folder)
    cache = (
        f"proxy_cache_path {folder}/checks keys_zone=checks:10m levels=1:2 inactive=10s;"
        " limit_req_zone $http_authorization zone=per_client:10m rate=100000000r/m;"
        if cached
        else ""
    )
    remembered = (
        'proxy_cache checks; proxy_cache_key "$request_method $http_authorization $http_x_api_key";'
        " proxy_cache_valid 200 1s; proxy_ignore_headers Cache-Control Expires Set-Cookie;"
        if cached
        else ""
    )
    limit = "limit_req zone=per_client burst=1000 nodelay;" if cached else ""
    config = folder / f"nginx-edge-{'cached' if cached else 'checked'}.conf"
    config.write_text(f"""
worker_processes 2;
pid {folder}/nginx-edge-{port}.pid;
error_log {folder}/nginx-edge-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off; {temp} {cache}
  {blocks}
  map $forward_auth $upstream_authorization {{ "" $http_authorization; default $forward_auth; }}
  server {{
    listen 127.0.0.1:{port};
    location /api/user/ {{ {limit} {forward} proxy_pass http://user; }}
    location /api/loan/ {{ {limit} {forward} proxy_pass http://loan; }}
    location = /_check {{
      internal; {remembered} {proxy}
      proxy_pass_request_body off; proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri; proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Forwarded-For $remote_addr; proxy_set_header X-Correlation-ID $request_id;
      proxy_pass http://check;
    }}
  }}
}}
""")
    return config


def prepare(var: Path, env: dict[str, str]) -> None:
    """Keys, both databases, 2,000 loans and an admin to sign in as."""
    subprocess.run([PYTHON, "-m", "common.keys", str(var / "keys")], check=True, capture_output=True, env=env)
    commands = [
        ("user_service", ["migrate", "--noinput"]),
        ("loan_service", ["migrate", "--noinput"]),
        ("loan_service", ["seed_loans", "--count", "2000"]),
        ("user_service", ["createadmin", "--email", "bench@example.com", "--password", PASSWORD]),
    ]
    for folder, command in commands:
        subprocess.run([PYTHON, "manage.py", *command], cwd=ROOT / folder, env=env, check=True, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per target (one connection)")
    parser.add_argument("--seconds", type=int, default=2, help="wrk duration of one round per target")
    parser.add_argument("--rounds", type=int, default=5, help="wrk rounds over every target (the median is kept)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7", help="Redis for the shared-limits row")
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="lms-bench-gw-"))
    base = {**os.environ, "LMS_VAR_DIR": str(var), "LOG_LEVEL": "WARNING", "DJANGO_ENV": "development"}
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL"):
        base.pop(name, None)
    user_port, loan_port = free_port(), free_port()
    direct = {"profile": f"http://127.0.0.1:{user_port}", "loan list": f"http://127.0.0.1:{loan_port}"}
    public_key = str(var / "keys" / "jwt_public.pem")
    services_env = {**base, "JWT_PUBLIC_KEY_PATHS": public_key, "USER_SERVICE_URL": direct["profile"]}
    services_env["LOGIN_RATE_PER_IP"] = "1000/min"
    services_env["JWT_ACCESS_LIFETIME_SECONDS"] = "3600"  # one token for the whole run (the default lasts 5 minutes)
    services_env["MFA_REQUIRED_ROLES"] = ""  # the seeded admin signs in with a password alone (no second factor here)
    prepare(var, services_env)
    gateway_env = {
        **base,
        "USER_SERVICE_URLS": direct["profile"],
        "LOAN_SERVICE_URLS": direct["loan list"],
        "NOTIFICATION_SERVICE_URLS": direct["profile"],
        "JWT_JWKS_URL": "",
        "JWT_PUBLIC_KEY_PATHS": public_key,
        "LOG_LEVEL": "INFO",  # the JSON access log is written (to a discarded stdout)
        "RATE_LIMIT_PER_IP": "100000000",  # checked on every request, never refusing one
        "RATE_LIMIT_PER_USER": "100000000",
    }
    gateways = dict(GATEWAYS)
    if redis_answers(args.redis_url):
        chosen = GATEWAYS["gateway: gunicorn gthread (chosen)"][0]
        gateways["gateway: gthread, limits in Redis (leased)"] = (chosen, {"REDIS_URL": args.redis_url})
        lease_off = {"REDIS_URL": args.redis_url, "RATE_LIMIT_LEASE_MAX": "1"}
        gateways["gateway: gthread, limits in Redis, lease off"] = (chosen, lease_off)
    else:
        print(f"note: no Redis at {args.redis_url}; the shared rate-limit row is left out")

    sink_port = free_port()  # tracing on: spans exported over OTLP/HTTP to a sink that keeps nothing
    chosen = GATEWAYS["gateway: gunicorn gthread (chosen)"][0]
    gateways["gateway: gthread, tracing on (OTLP)"] = (
        chosen,
        {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}"},
    )

    processes = Processes()
    try:
        processes.start(
            [PYTHON, str(ROOT / "benchmarks" / "proxy_candidates" / "otlp_sink.py"), str(sink_port)], ROOT, base
        )
        for folder, port in (("user_service", user_port), ("loan_service", loan_port)):
            argv = gunicorn(f"{folder}.wsgi:application", port, "--worker-class", "gthread", "--threads", "4")
            processes.start(argv, ROOT / folder, services_env)
        for url in direct.values():
            processes.wait_healthy(f"{url}/health")
        login = urllib3.request(
            "POST",
            f"{direct['profile']}/api/user/login",
            body=json.dumps({"email": "bench@example.com", "password": PASSWORD}),
            headers={"Content-Type": "application/json"},
        )
        token = json.loads(login.data)["data"]["access"]

        targets = {name: {DIRECT: url + path} for (name, path), url in zip(PATHS.items(), direct.values(), strict=True)}
        for label, (argv, extra) in gateways.items():
            port = free_port()
            processes.start(argv(port), ROOT / "gateway_project", {**gateway_env, **extra})
            for name, path in PATHS.items():
                targets[name][label] = f"http://127.0.0.1:{port}{path}"
        for label, (route, argv) in CANDIDATES.items():
            port = free_port()
            interface = "asgi" if "uvicorn" in label else "wsgi"
            processes.start(argv(port), ROOT, {**base, "UPSTREAM": direct["profile"], "PROXY_INTERFACE": interface})
            targets["profile"][label] = f"http://127.0.0.1:{port}{route}{PATHS['profile']}"
        if shutil.which("nginx"):
            port = free_port()
            config = nginx_config(var, port, {"user": user_port, "loan": loan_port})
            processes.start(["nginx", "-c", str(config), "-g", "daemon off;"], var, base)
            for name, path in PATHS.items():
                targets[name][NGINX] = f"http://127.0.0.1:{port}{path}"
            if redis_answers(args.redis_url):
                check_port = free_port()
                check_env = {**gateway_env, **EDGE_CHECK_ENV, "REDIS_URL": args.redis_url, "PYTHONPATH": str(ROOT)}
                processes.start(gthread(GATEWAY, check_port, *CONFIG, *DEADLINES), ROOT / "gateway_project", check_env)
                services = {"user": user_port, "loan": loan_port, "check": check_port}
                for label, cached in ((EDGE_CHECKED, False), (EDGE_CACHED, True)):
                    port = free_port()
                    config = nginx_edge_config(var, port, services, cached=cached)
                    processes.start(["nginx", "-c", str(config), "-g", "daemon off;"], var, base)
                    for name, path in PATHS.items():
                        targets[name][label] = f"http://127.0.0.1:{port}{path}"
        else:
            print("note: nginx is not installed; the reference and nginx-edge rows are left out")
        for url in {url.split("/api/")[0] + "/api/user/.well-known/jwks.json" for url in targets["profile"].values()}:
            processes.wait_healthy(url)

        for name in PATHS:  # the prototypes' nginx refuses a forged token itself, as the gateway does
            for label in (EDGE_CHECKED, EDGE_CACHED):
                if label in targets[name]:
                    edge_refuses_forged_token(targets[name][label], token)

        for name, endpoint_targets in targets.items():
            one = one_connection(endpoint_targets, token, args.requests)
            many = many_connections(endpoint_targets, token, args.seconds, args.rounds)
            report(name, one, many)
    finally:
        processes.stop_all()
        shutil.rmtree(var, ignore_errors=True)
    return 0


def report(name: str, one: dict[str, dict[str, float]], many: dict[str, dict] | None) -> None:
    print(f"\n{name}: one connection (sequential, interleaved) and 32 connections (wrk, median of the rounds)")
    print(
        f"{'target':<48} {'p50 ms':>7} {'+p50':>6} {'p99 ms':>7} | {'req/s@32':>9} {'ratio':>6} {'p50':>7} {'p99':>7}"
    )
    for label, figures in one.items():
        added = figures["p50"] - one[DIRECT]["p50"]
        line = f"{label:<48} {figures['p50']:>7.2f} {added:>+6.2f} {figures['p99']:>7.2f} |"
        if many:
            run, ratio = many[label], many[label]["rps"] / many[DIRECT]["rps"]
            line += f" {run['rps']:>9.0f} {ratio:>6.2f} {run['p50']:>7.2f} {run['p99']:>7.2f}"
        print(line)


if __name__ == "__main__":
    sys.exit(main())
