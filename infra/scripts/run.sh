#!/usr/bin/env bash
# Start both services under gunicorn in the foreground; Ctrl-C (or SIGTERM) stops both.
# Used by `make run`; expects the databases to be prepared (`make prepare`).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin}
HOST=${HOST:-127.0.0.1}
RUN_DIR=${RUN_DIR:-.run}
mkdir -p "$RUN_DIR"
# A local run keeps the README's curl working without a token: authentication is off unless asked for
# (AUTH_MODE=jwt; docs/auth.md). The services log the choice, and /ready shows it.
export AUTH_MODE=${AUTH_MODE:-off}

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
}
trap stop INT TERM EXIT

start() {  # start SERVICE PORT BROKER_URL
  AMQP_URL="$3" PROMETHEUS_MULTIPROC_DIR="$RUN_DIR/metrics-$1" "$PY/gunicorn" "$1.app:create_app" \
    -c python:shared.gunicorn_conf --name "$1" --bind "$HOST:$2" &
  pids+=($!)
}

# Each service may have a broker URL of its own (its own RabbitMQ user, say); AMQP_URL otherwise.
BROKER=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
start customer "${CUSTOMER_PORT:-3000}" "${CUSTOMER_AMQP_URL:-$BROKER}"
start order "${ORDER_PORT:-3001}" "${ORDER_AMQP_URL:-$BROKER}"
echo "customer on http://$HOST:${CUSTOMER_PORT:-3000}, order on http://$HOST:${ORDER_PORT:-3001} (Ctrl-C stops both)"
# If either service exits, stop the other too.
wait -n
