#!/usr/bin/env bash
# Install what the test suite needs from outside the virtualenv: Debian's chromium, which the /docs browser
# test drives headless. Idempotent and silent when it is already there; used by `make test`.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: chromium is missing and there is no apt-get here; install chromium yourself," \
       "or the /docs browser test is skipped." >&2
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-test-deps: chromium is missing; run 'apt-get install chromium' as root," \
         "or the /docs browser test is skipped." >&2
    exit 0
  fi
  sudo=(sudo -n)
fi

echo "install-test-deps: installing chromium for the /docs browser test..."
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
