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
# ... and the operator's /ops/ routes (dead letters) answer without a token on this developer's machine.
export OPS_ALLOW_UNAUTHENTICATED=${OPS_ALLOW_UNAUTHENTICATED:-true}

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

# AUTH_MODE=jwt with no issuer of yours: the development issuer (not for production), and both services
# pointed at it; the order service as its client `order-service`.
if [ "$AUTH_MODE" = jwt ] && [ -z "${AUTH_ISSUER:-}" ]; then
  ISSUER_URL="http://127.0.0.1:${DEV_ISSUER_PORT:-3010}"
  "$PY/python" -m shared.devissuer serve --port "${DEV_ISSUER_PORT:-3010}" &
  pids+=($!)
  export AUTH_ISSUER=$ISSUER_URL AUTH_JWKS_URL=$ISSUER_URL/jwks AUTH_TOKEN_URL=$ISSUER_URL/token
  export ORDER_CLIENT_ID=${ORDER_CLIENT_ID:-order-service} ORDER_CLIENT_SECRET=${ORDER_CLIENT_SECRET:-order-service-secret}
  echo "development issuer on $ISSUER_URL; a token: make token SCOPE=\"orders:write\" (docs/auth.md), then"
  echo "  curl -H \"Authorization: Bearer \$(make -s token SCOPE=customers:read)\" http://$HOST:${CUSTOMER_PORT:-3000}/customers"
fi

# Each service may have a broker URL of its own (its own RabbitMQ user, say); AMQP_URL otherwise.
BROKER=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
start customer "${CUSTOMER_PORT:-3000}" "${CUSTOMER_AMQP_URL:-$BROKER}"
start order "${ORDER_PORT:-3001}" "${ORDER_AMQP_URL:-$BROKER}"
echo "customer on http://$HOST:${CUSTOMER_PORT:-3000}, order on http://$HOST:${ORDER_PORT:-3001} (Ctrl-C stops both)"
# If either service exits, stop the other too.
wait -n
