#!/usr/bin/env bash
# Extra system packages the test suite needs: Debian's Chromium for the headless browser test
# (Playwright cannot download its own browser here).
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  echo "--- installing chromium (Debian package) for the browser test"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
