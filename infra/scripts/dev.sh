#!/usr/bin/env bash
# Both services under aiohttp-devtools' development server, reloading on code changes; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin}
export AUTH_MODE=${AUTH_MODE:-off}  # as `make run` (docs/auth.md)
pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
}
trap stop INT TERM EXIT
# --aux-port: adev's reload server defaults to port+1, which is the order service's port.
"$PY/adev" runserver customer/app.py --app-factory create_app --root . --no-livereload \
  -p "${CUSTOMER_PORT:-3000}" --aux-port 3100 & pids+=($!)
"$PY/adev" runserver order/app.py --app-factory create_app --root . --no-livereload \
  -p "${ORDER_PORT:-3001}" --aux-port 3101 & pids+=($!)
wait -n
