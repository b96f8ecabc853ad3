#!/usr/bin/env bash
# Install what the test suite needs from outside the virtualenv, from Debian's packages: chromium and
# chromium-driver (the /docs and /ops/console browser tests drive it headless, the latter through the DevTools
# protocol; the driver serves WebDriver clients of the same browser), pgbouncer (the suite starts its own, on a free port),
# prometheus (promtool checks and unit-tests the alert rules; the suite starts its own server on a free port),
# prometheus-alertmanager (amtool checks the Alertmanager configuration),
# and podman, runc and debootstrap (the container tests build the image and its Debian base images:
# shared/testing/base_images.py).
# Then the npm tools of infra/test-tools (Redocly's CLI lints the OpenAPI documents), exactly as its lock
# file pins them, into .venv/test-tools: reinstalled only when the lock file changed.
# Idempotent and silent when they are there; used by `make test`. Where they cannot be installed, the
# tests that need them are skipped with the reason.
set -euo pipefail

npm_tools() {
  local source=infra/test-tools target=.venv/test-tools
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-test-deps: no npm (Debian's nodejs and npm); the tests that lint with Redocly are skipped." >&2
    return 0
  fi
  if cmp -s "$source/package-lock.json" "$target/package-lock.json" && [ -x "$target/node_modules/.bin/redocly" ]; then
    return 0
  fi
  echo "install-test-deps: installing the npm tools of $source into $target..."
  mkdir -p "$target"
  cp "$source/package.json" "$source/package-lock.json" "$target/"
  (cd "$target" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) ||
    echo "install-test-deps: npm ci failed; the tests that lint with Redocly are skipped." >&2
}
trap npm_tools EXIT

missing=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || missing+=(prometheus)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: ${missing[*]} missing and there is no apt-get here; install them yourself," \
       "or the tests that need them are skipped." >&2
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-test-deps: ${missing[*]} missing; run 'apt-get install ${missing[*]}' as root," \
         "or the tests that need them are skipped." >&2
    exit 0
  fi
  sudo=(sudo -n)
fi

echo "install-test-deps: installing ${missing[*]} for the tests..."
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
