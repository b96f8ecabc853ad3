"""`python -m customer` / `python -m order`: one service under gunicorn, as `make run` starts each.

    python -m customer [GUNICORN OPTIONS]   on HOST:CUSTOMER_PORT (127.0.0.1:3000); WORKERS workers
    python -m order [GUNICORN OPTIONS]      on HOST:ORDER_PORT (127.0.0.1:3001)

Extra options go to gunicorn (e.g. `--bind 0.0.0.0:3000`, `--workers 4`). The databases must be
prepared first (`python -m <service>.manage prepare`); `make run` does that and starts both.
"""

import os
import sys

from gunicorn.app.wsgiapp import run

CONFIG = "python:shared.gunicorn_conf"


def gunicorn_argv(service: str, default_port: int, extra: list[str]) -> list[str]:
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get(f"{service.upper()}_PORT", str(default_port))
    return [
        "gunicorn",
        f"{service}.app:create_app",
        "-c",
        CONFIG,
        "--name",
        service,
        "--bind",
        f"{host}:{port}",
        *extra,
    ]


def serve(service: str, default_port: int, extra: list[str] | None = None) -> None:
    extra = sys.argv[1:] if extra is None else extra
    if {"-h", "--help"} & set(extra):
        print(__doc__)
        return
    # Several workers merge their metrics through files (run.sh does the same, under RUN_DIR).
    os.environ.setdefault(
        "PROMETHEUS_MULTIPROC_DIR", os.path.join(os.environ.get("RUN_DIR", ".run"), f"metrics-{service}")
    )
    sys.argv = gunicorn_argv(service, default_port, extra)
    run()
