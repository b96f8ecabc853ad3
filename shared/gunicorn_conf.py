"""gunicorn settings shared by both services (a module, so it ships in the package and the image).

    gunicorn customer.app:create_app -c python:shared.gunicorn_conf --name customer --bind 127.0.0.1:3000
    python -m customer                  the same, on HOST:CUSTOMER_PORT (shared/serve.py)

`--name` (proc_name) names the service in every log line. WORKERS sets the worker count.
"""

import asyncio
import importlib
import os
import shutil
import sys

from prometheus_client import multiprocess

from shared.logs import configure_logging
from shared.settings import SharedSettings, not_configured
from shared.tls import certificate_problems

worker_class = "aiohttp.GunicornUVLoopWebWorker"
workers = int(os.environ.get("WORKERS", "1"))
# gunicorn 25.1+ opens a control socket shared by every gunicorn of the user; we need none.
control_socket_disable = True
# Time a worker gets on SIGTERM to finish in-flight requests and drain the consumer.
graceful_timeout = 20
timeout = 30
keepalive = 5
accesslog = None  # our JSON access log comes from shared.observe


def _settings_class(app_uri: str) -> type[SharedSettings]:
    module = importlib.import_module(app_uri.split(".", 1)[0] + ".settings")
    (settings_class,) = {
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, SharedSettings) and value.__module__ == module.__name__
    }
    return settings_class


def refuse_unconfigured_start(app_uri: str) -> None:
    """Fail closed before any worker starts: one line naming the missing variable, exit 1 (a worker
    that failed in create_app would only be started again, and again). The service's settings module
    (`customer.app:create_app` -> `customer.settings`) only: the app's modules make metrics on import."""
    missing = _settings_class(app_uri)().missing_auth_setting()
    if missing is not None:
        print(not_configured(missing), file=sys.stderr)
        sys.exit(1)


def refuse_unverified_tls(app_uri: str) -> None:
    """Fail closed, before any worker starts, when a database or broker the service connects to over TLS
    shows a certificate that fails verification: a wrong CA file or host is not an outage to wait out."""
    problems = asyncio.run(certificate_problems(_settings_class(app_uri)()))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(1)


def on_starting(server) -> None:
    refuse_unconfigured_start(server.app.app_uri)
    refuse_unverified_tls(server.app.app_uri)
    # Metrics from several workers are merged through files in this directory; stale files would add up.
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
    configure_logging(server.cfg.proc_name, SharedSettings().log_level)


def post_worker_init(worker) -> None:
    configure_logging(worker.cfg.proc_name, SharedSettings().log_level)


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
