#!/usr/bin/env bash
# Install what the test suite needs from outside the virtualenv, from Debian's packages: chromium and
# chromium-driver (the /docs and /ops/console browser tests drive it headless, the latter through the DevTools
# protocol; the driver serves WebDriver clients of the same browser), pgbouncer (the suite starts its own, on a free port),
# prometheus (promtool checks and unit-tests the alert rules; the suite starts its own server on a free port),
# and podman, runc and debootstrap (the container tests build the image and its Debian base images:
# shared/testing/base_images.py).
# Idempotent and silent when they are there; used by `make test`. Where they cannot be installed, the
# tests that need them are skipped with the reason.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || missing+=(prometheus)
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
