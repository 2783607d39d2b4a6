"""gunicorn settings of the gateway (read from this folder, or with --config): metrics shared by every worker.

The gateway alone decides whose X-Forwarded-* headers to believe (NUM_PROXIES),
so gunicorn takes no scheme from request headers, whatever address sends them
(by default it believes 127.0.0.1, and request.scheme would be the client's word).

Each gunicorn master gives its workers one PROMETHEUS_MULTIPROC_DIR under
LMS_VAR_DIR (set here, before any worker imports prometheus_client), so
/metrics adds up every worker's counts whichever worker answers; a worker's
files are marked dead when it exits and the folder is removed with the
master. Servers without these hooks (granian, uvicorn) keep one registry per
process.
"""

import os
import shutil
from pathlib import Path

from gunicorn.arbiter import Arbiter
from gunicorn.workers.base import Worker

from common.env import env_str

secure_scheme_headers: dict[str, str] = {}
forwarded_allow_ips = ""

_own_folder = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")  # an operator's own folder is left to them
if _own_folder:
    _var = Path(env_str("LMS_VAR_DIR", str(Path(__file__).resolve().parent.parent / "var")))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_var / "prometheus" / f"gateway-{os.getpid()}")
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

# Imported once here, after the folder is set: child_exit runs in the master's SIGCHLD handler, and a first
# import there was re-entered by the next worker's exit at shutdown (a circular-import crash of the master).
from prometheus_client import multiprocess  # noqa: E402


def child_exit(server: Arbiter, worker: Worker) -> None:
    """A worker is gone: its live gauges no longer count."""
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Arbiter) -> None:
    """The master stops: this run's metric files go with it."""
    if _own_folder:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
