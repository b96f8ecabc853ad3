#!/usr/bin/env bash
# Start both services under gunicorn in the foreground; Ctrl-C (or SIGTERM) stops both.
# Used by `make run`; expects the databases to be prepared (`make prepare`).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin}
HOST=${HOST:-127.0.0.1}
RUN_DIR=${RUN_DIR:-.run}
mkdir -p "$RUN_DIR"

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
}
trap stop INT TERM EXIT

start() {  # start SERVICE PORT
  PROMETHEUS_MULTIPROC_DIR="$RUN_DIR/metrics-$1" "$PY/gunicorn" "$1.app:create_app" \
    -c infra/gunicorn.conf.py --name "$1" --bind "$HOST:$2" &
  pids+=($!)
}

start customer "${CUSTOMER_PORT:-3000}"
start order "${ORDER_PORT:-3001}"
echo "customer on http://$HOST:${CUSTOMER_PORT:-3000}, order on http://$HOST:${ORDER_PORT:-3001} (Ctrl-C stops both)"
# If either service exits, stop the other too.
wait -n
