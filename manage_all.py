#!/usr/bin/env python3
"""One entry point for people: set up, run and test the whole Loan Management System.

Standard library only, so it runs on a fresh clone before anything is installed.

    python3 manage_all.py up [--base-port 8000]   set up everything, run every service, one labelled log
    python3 manage_all.py test                    set up (with dev tools), run every suite, summary line
    python3 manage_all.py createadmin --email E --password P
    python3 manage_all.py migrate | check | manage SERVICE ARGS...
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import venv
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
DEFAULT_VAR = ROOT / "var"
REQUIREMENTS = ROOT / "requirements"
DEV_SERVICE_KEY = "dev-only-service-key"


@dataclass(frozen=True)
class Service:
    """A Django project of the system, its port offset and what it runs besides its web process."""

    name: str  # folder and settings package
    label: str  # short name in logs and in <LABEL>_DATABASE_URL
    port_offset: int
    has_database: bool = True
    relay: bool = False  # runs `manage.py relay_outbox` (it publishes events)
    worker_queues: str = ""  # runs a Celery worker on these queues
    worker_concurrency: int = 2  # pool processes of that worker
    beat: bool = False  # runs Celery beat (periodic tasks)

    @property
    def folder(self) -> Path:
        return ROOT / self.name

    @property
    def exists(self) -> bool:
        return (self.folder / "manage.py").exists()

    @property
    def database_env(self) -> str:
        return f"{self.name.upper()}_DATABASE_URL"


SERVICES = [
    Service("user_service", "user", 1, relay=True),
    # Statements and the daily job: one pool process is enough, and keeps `up` and the e2e system small.
    Service("loan_service", "loan", 2, relay=True, worker_queues="loans", worker_concurrency=1, beat=True),
    Service("notification_service", "notification", 3, worker_queues="events,notifications", beat=True),
    Service("gateway_project", "gateway", 0, has_database=False),
]


def existing_services() -> list[Service]:
    return [service for service in SERVICES if service.exists]


# --------------------------------------------------------------------------- environment


def in_virtualenv() -> bool:
    return sys.prefix != sys.base_prefix or bool(os.environ.get("VIRTUAL_ENV"))


def python() -> str:
    """The interpreter that has the requirements: this one inside a virtualenv, else .venv's."""
    return sys.executable if in_virtualenv() else str(VENV / "bin" / "python")


def tool(name: str) -> str:
    return str(Path(python()).parent / name)


def say(message: str) -> None:
    print(f"[manage_all] {message}", flush=True)


def run(argv: list[str], *, cwd: Path = ROOT, env: dict | None = None, quiet: bool = False) -> None:
    """Run a set-up step; stop with its output if it fails."""
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=quiet, text=True, check=False)
    if result.returncode != 0:
        if quiet:
            sys.stdout.write(result.stdout[-4000:])
            sys.stderr.write(result.stderr[-4000:])
        sys.exit(f"[manage_all] failed ({result.returncode}): {' '.join(argv)}")


def requirements_digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in [*sorted(REQUIREMENTS.glob("*.txt")), ROOT / "common" / "pyproject.toml"]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(" ".join(str(f) for f in files).encode())
    return digest.hexdigest()[:16]


def install_requirements(*, dev: bool) -> None:
    """Create .venv (unless already in a virtualenv) and install the pinned requirements once."""
    if not in_virtualenv() and not (VENV / "bin" / "python").exists():
        say("creating .venv")
        venv.EnvBuilder(with_pip=True).create(VENV)
    files = [REQUIREMENTS / ("dev.txt" if dev else "all.txt")]
    stamp = Path(python()).parent.parent / f".lms-requirements-{requirements_digest(files)}"
    if stamp.exists():
        return
    say(f"installing {', '.join(f.name for f in files)} (first run takes a few minutes)")
    run([python(), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--upgrade", "pip"], quiet=True)
    args = [python(), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", str(ROOT / "common")]
    for requirements_file in files:
        args += ["-r", str(requirements_file)]
    run(args)
    stamp.touch()


def var_dir() -> Path:
    path = Path(os.environ.get("LMS_VAR_DIR", DEFAULT_VAR))
    path.mkdir(parents=True, exist_ok=True)
    return path


def ensure_dev_keys(var: Path) -> None:
    if os.environ.get("JWT_PRIVATE_KEY_PATH"):
        return
    run([python(), "-m", "common.keys", str(var / "keys")], quiet=True)


def service_env(service: Service, *, base_port: int, var: Path, extra: dict | None = None) -> dict[str, str]:
    """The environment one service's processes run with (development defaults, overridable)."""
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    host = "http://127.0.0.1"
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "LMS_VAR_DIR": str(var),
            "DJANGO_SETTINGS_MODULE": f"{service.name}.settings",
        }
    )
    env.setdefault("SERVICE_KEY", DEV_SERVICE_KEY)
    env.setdefault("JWT_PUBLIC_KEY_PATHS", str(var / "keys" / "jwt_public.pem"))
    env.setdefault("USER_SERVICE_URL", f"{host}:{base_port + 1}")
    env.setdefault("USER_SERVICE_URLS", f"{host}:{base_port + 1}")
    env.setdefault("LOAN_SERVICE_URLS", f"{host}:{base_port + 2}")
    env.setdefault("NOTIFICATION_SERVICE_URLS", f"{host}:{base_port + 3}")
    env.setdefault("JWT_JWKS_URL", f"{host}:{base_port + 1}/api/user/.well-known/jwks.json")
    database_url = os.environ.get(service.database_env)
    if database_url and service.has_database:
        env["DATABASE_URL"] = database_url
    env.update(extra or {})
    return env


def migrate_all(var: Path, *, base_port: int = 8000, extra_env: dict | None = None) -> None:
    for service in existing_services():
        if service.has_database:
            say(f"migrating {service.name}")
            run(
                [python(), "manage.py", "migrate", "--noinput"],
                cwd=service.folder,
                env=service_env(service, base_port=base_port, var=var, extra=extra_env),
                quiet=True,
            )


def bootstrap(*, dev: bool = False, migrate: bool = True) -> Path:
    install_requirements(dev=dev)
    var = var_dir()
    ensure_dev_keys(var)
    if migrate:
        migrate_all(var)
    return var


# --------------------------------------------------------------------------- processes


@dataclass
class ProcessSpec:
    label: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    health_url: str = ""


def web_argv(service: Service, port: int, env: dict[str, str]) -> list[str]:
    argv = [tool("gunicorn"), f"{service.name}.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    argv += ["--workers", env.get("LMS_WEB_WORKERS", "2"), "--graceful-timeout", "5", "--timeout", "30"]
    if service.name == "gateway_project":
        # gunicorn.conf.py: one Prometheus multi-process folder per master, so /metrics adds up every worker.
        # GatewayThreadWorker: gthread with a deadline on reading headers (gateway_project/worker.py).
        argv += ["--config", str(service.folder / "gunicorn.conf.py")]
        worker_class = env.get("GATEWAY_WORKER_CLASS", "gateway_project.worker.GatewayThreadWorker")
        return [*argv, "--worker-class", worker_class, "--threads", "8"]
    return [*argv, "--worker-class", "gthread", "--threads", "4"]


def plan(
    base_port: int, var: Path, *, extra_env: dict | None = None, only: set[str] | None = None
) -> list[ProcessSpec]:
    """Every process of the system: web servers, outbox relays, Celery workers and beats."""
    specs = []
    for service in existing_services():
        if only is not None and service.label not in only:
            continue
        env = service_env(service, base_port=base_port, var=var, extra=extra_env)
        port = base_port + service.port_offset
        specs.append(
            ProcessSpec(
                service.label, web_argv(service, port, env), service.folder, env, f"http://127.0.0.1:{port}/health"
            )
        )
        if service.relay:
            specs.append(
                ProcessSpec(f"{service.label}-relay", [python(), "manage.py", "relay_outbox"], service.folder, env)
            )
        if service.beat:
            schedule = var / f"{service.name}-beat-schedule"
            specs.append(
                ProcessSpec(
                    f"{service.label}-beat",
                    [tool("celery"), "-A", f"{service.name}.celery", "beat", "--loglevel", "INFO", "-s", str(schedule)],
                    service.folder,
                    env,
                )
            )
        if service.worker_queues:
            specs.append(
                ProcessSpec(
                    f"{service.label}-worker",
                    [
                        tool("celery"),
                        "-A",
                        f"{service.name}.celery",
                        "worker",
                        "-Q",
                        service.worker_queues,
                        "--loglevel",
                        "INFO",
                        "--concurrency",
                        str(service.worker_concurrency),
                        # Its own node name: workers of several services share one broker, and a ping
                        # (`inspect ping -d`) must reach this one.
                        "--hostname",
                        f"{service.name}@%h",
                        "--without-gossip",
                        "--without-mingle",
                    ],
                    service.folder,
                    env,
                )
            )
    return specs


@dataclass
class Supervisor:
    """Starts processes in their own process groups, labels their output, and stops them all."""

    output = sys.stdout
    running: dict[str, subprocess.Popen] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, spec: ProcessSpec) -> subprocess.Popen:
        process = subprocess.Popen(
            spec.argv,
            cwd=spec.cwd,
            env=spec.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.running[spec.label] = process
        threading.Thread(target=self._pump, args=(spec.label, process), daemon=True).start()
        return process

    def _pump(self, label: str, process: subprocess.Popen) -> None:
        width = 20
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            with self._lock:
                self.output.write(f"{label:<{width}}| {line}\n")
                self.output.flush()

    def stop(self, label: str, *, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        process = self.running.pop(label, None)
        if process is None:
            return
        _signal_group(process, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=5)
        _signal_group(process, signal.SIGKILL)  # any grandchild left behind in the group

    def stop_all(self) -> None:
        for label in list(self.running):
            process = self.running[label]
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for label in list(self.running):
            process = self.running.pop(label)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=5)

    def exited(self) -> list[tuple[str, int]]:
        return [(label, p.returncode) for label, p in self.running.items() if p.poll() is not None]


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def wait_healthy(
    url: str,
    *,
    timeout: float = 60.0,
    process: subprocess.Popen | None = None,
    stopping: threading.Event | None = None,
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stopping is not None and stopping.is_set():
            return False
        if process is not None and process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback URL
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.2)
    return False


# --------------------------------------------------------------------------- commands


def command_up(args) -> int:
    var = bootstrap()
    supervisor = Supervisor()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    specs = plan(args.base_port, var)
    try:
        for spec in specs:
            supervisor.start(spec)
        for spec in specs:
            process = supervisor.running.get(spec.label)
            if spec.health_url and not wait_healthy(spec.health_url, process=process, stopping=stopping):
                if not stopping.is_set():
                    say(f"{spec.label} did not become healthy at {spec.health_url}; stopping everything")
                return 0 if stopping.is_set() else 1
        say("all services are up:")
        for spec in specs:
            if spec.health_url:
                say(f"  {spec.label:<13} {spec.health_url.removesuffix('/health')}")
        say(f"API docs: http://127.0.0.1:{args.base_port}/api/docs   (Ctrl-C stops everything)")
        while not stopping.wait(0.5):
            died = supervisor.exited()
            if died:
                say(f"stopping: {', '.join(f'{label} exited with {code}' for label, code in died)}")
                return 1
        return 0
    finally:
        say("stopping all processes")
        supervisor.stop_all()


@dataclass
class SuiteResult:
    name: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    returncode: int = 0


def junit_counts(path: Path) -> tuple[int, int, int]:
    if not path.exists():
        return 0, 0, 0
    root = ElementTree.parse(path).getroot()  # noqa: S314 - our own pytest's report
    suites = [root] if root.tag == "testsuite" else list(root)
    tests = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return tests - failed - skipped, failed, skipped


def test_suites(var: Path) -> list[tuple[str, list[str], Path, dict]]:
    pytest = [python(), "-m", "pytest", "-c", str(ROOT / "pyproject.toml")]
    suites = []
    for service in existing_services():
        env = service_env(service, base_port=8000, var=var)
        suites.append(
            (
                service.name,
                [
                    *pytest,
                    "--rootdir",
                    str(service.folder),
                    "-p",
                    "pytest_django",
                    "--ds",
                    f"{service.name}.settings",
                    "tests",
                ],
                service.folder,
                env,
            )
        )
    common_env = {**os.environ, "LMS_VAR_DIR": str(var)}
    common_env.pop("DATABASE_URL", None)
    if os.environ.get("COMMON_DATABASE_URL"):
        common_env["DATABASE_URL"] = os.environ["COMMON_DATABASE_URL"]
    suites.append(
        (
            "common",
            [*pytest, "--rootdir", str(ROOT / "common"), "-p", "pytest_django", "--ds", "tests.settings", "tests"],
            ROOT / "common",
            common_env,
        )
    )
    if (ROOT / "tests").is_dir():
        suites.append(
            (
                "end-to-end",
                [*pytest, "--rootdir", str(ROOT), "-p", "no:django", "tests"],
                ROOT,
                {"LMS_TEST_ARTEFACTS": str(var / "test-artefacts"), **os.environ, "LMS_PYTHON": python()},
            )
        )
    return suites


BROWSER_PACKAGES = ["chromium", "chromium-driver"]  # Debian's: the end-to-end suite's admin tests drive them


def ensure_browser() -> None:
    """Install Chromium and its driver for the browser tests when missing, as root with apt-get; else say why not.

    The tests skip themselves, with the reason, when the browser still is not there.
    LMS_NO_BROWSER_INSTALL=1 leaves the machine as it is.
    """
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    packages = " ".join(BROWSER_PACKAGES)
    if os.environ.get("LMS_NO_BROWSER_INSTALL"):
        say(f"{packages} not installed (LMS_NO_BROWSER_INSTALL is set): the browser tests will be skipped")
        return
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        say(f"{packages} not installed and not installable here (needs root and apt-get): the browser tests will be")
        say(f"  skipped; install them with `apt-get install {packages}`")
        return
    say(f"installing {packages} for the browser tests (apt-get; LMS_NO_BROWSER_INSTALL=1 skips this)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", *BROWSER_PACKAGES]
    attempts = [[install], [["apt-get", "update", "-q"], install]]  # the package lists may be missing or stale
    for steps in attempts:
        for argv in steps:
            try:
                done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900, check=False)
            except subprocess.TimeoutExpired:
                done = None
            if done is None or done.returncode != 0:
                failure = "timed out" if done is None else (done.stderr or done.stdout).strip()[-800:]
                break
        else:
            if shutil.which("chromium") and shutil.which("chromedriver"):
                return
            failure = "installed, yet chromium or chromedriver is not on PATH"
    say(f"could not install {packages}: the browser tests will be skipped. apt-get said:\n{failure}")


def command_test(args) -> int:
    var = bootstrap(dev=True, migrate=False)
    if not args.only or "end-to-end" in args.only:
        ensure_browser()
    results = []
    reports = var / "test-reports"
    reports.mkdir(exist_ok=True)
    if not args.only or "checks" in args.only:
        say("running static checks")
        checks = static_checks(var)
        failed_checks = sum(not passed for _, passed in checks)
        results.append(SuiteResult("checks", len(checks) - failed_checks, failed_checks, 0, 1 if failed_checks else 0))
    for name, argv, cwd, env in test_suites(var):
        if args.only and name not in args.only:
            continue
        say(f"running {name} tests")
        report = reports / f"{name}.xml"
        report.unlink(missing_ok=True)
        code = subprocess.run(
            [*argv, f"--junitxml={report}", *args.pytest_args], cwd=cwd, env=env, check=False
        ).returncode
        passed, failed, skipped = junit_counts(report)
        if code != 0 and failed == 0:
            failed = 1  # a failure the report does not count: collection or usage error, no tests (exit 5)
        results.append(SuiteResult(name, passed, failed, skipped, code))
    say("summary:")
    for result in results:
        say(
            f"  {result.name:<22} {result.passed} passed, {result.failed} failed, {result.skipped} skipped"
            f" (exit {result.returncode})"
        )
    passed = sum(r.passed for r in results)
    failed = sum(r.failed for r in results)
    skipped = sum(r.skipped for r in results)
    print(f"{passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return 0 if results and failed == 0 and passed > 0 else 1


def command_createadmin(args) -> int:
    var = bootstrap()
    service = SERVICES[0]
    argv = [python(), "manage.py", "createadmin", "--email", args.email, "--password", args.password]
    if args.exist_ok:
        argv.append("--exist-ok")
    return subprocess.run(
        argv, cwd=service.folder, env=service_env(service, base_port=8000, var=var), check=False
    ).returncode


def command_migrate(args) -> int:
    bootstrap()
    return 0


def static_checks(var: Path) -> list[tuple[str, bool]]:
    """Django checks, migrations in sync, ruff (lint and format), import contracts: (name, passed) each."""
    results = []
    for service in existing_services():
        env = service_env(service, base_port=8000, var=var)
        argvs = [["manage.py", "check"]]
        if service.has_database:
            argvs.append(["manage.py", "makemigrations", "--check", "--dry-run"])
        for argv in argvs:
            code = subprocess.run([python(), *argv], cwd=service.folder, env=env, check=False).returncode
            results.append((f"{service.label}: {' '.join(argv[1:3])}", code == 0))
    for argv in (["check", "."], ["format", "--check", "."]):
        results.append(
            (f"ruff {argv[0]}", subprocess.run([tool("ruff"), *argv], cwd=ROOT, check=False).returncode == 0)
        )
    lint_env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(s.folder) for s in SERVICES)}
    results.append(
        (
            "import contracts",
            subprocess.run([tool("lint-imports")], cwd=ROOT, env=lint_env, check=False).returncode == 0,
        )
    )
    for name, passed in results:
        say(f"  {'ok  ' if passed else 'FAIL'} {name}")
    return results


def command_check(args) -> int:
    results = static_checks(bootstrap(dev=True, migrate=False))
    failures = sum(not passed for _, passed in results)
    say("all checks passed" if not failures else f"{failures} check(s) failed")
    return 1 if failures else 0


def command_manage(args) -> int:
    by_name = {s.name: s for s in SERVICES} | {s.label: s for s in SERVICES}
    service = by_name.get(args.service)
    if service is None or not service.exists:
        sys.exit(f"[manage_all] unknown service {args.service!r}; one of: {', '.join(s.name for s in SERVICES)}")
    var = bootstrap(migrate=False)
    return subprocess.run(
        [python(), "manage.py", *args.args],
        cwd=service.folder,
        env=service_env(service, base_port=8000, var=var),
        check=False,
    ).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="manage_all.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="set up and run every service, the relays, the workers and the beats")
    up.add_argument("--base-port", type=int, default=8000, help="gateway port; services use the next three")
    up.set_defaults(handler=command_up)

    test = commands.add_parser("test", help="run every test suite; ends with 'N passed, N failed'")
    test.add_argument(
        "--only",
        nargs="*",
        help="suites: checks, user_service, loan_service, notification_service, gateway_project, common, end-to-end",
    )
    test.add_argument("pytest_args", nargs=argparse.REMAINDER, help="passed to every pytest run after --")
    test.set_defaults(handler=command_test)

    admin = commands.add_parser("createadmin", help="create an admin user (works while `up` runs)")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", required=True)
    admin.add_argument("--exist-ok", action="store_true")
    admin.set_defaults(handler=command_createadmin)

    commands.add_parser("migrate", help="set up and migrate every database").set_defaults(handler=command_migrate)
    commands.add_parser("check", help="Django checks, migrations in sync, ruff, import contracts").set_defaults(
        handler=command_check
    )

    manage = commands.add_parser("manage", help="run SERVICE's manage.py with ARGS")
    manage.add_argument("service")
    manage.add_argument("args", nargs=argparse.REMAINDER)
    manage.set_defaults(handler=command_manage)

    args = parser.parse_args(argv)
    if getattr(args, "pytest_args", None) and args.pytest_args[:1] == ["--"]:
        args.pytest_args = args.pytest_args[1:]
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
