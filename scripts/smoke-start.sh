#!/usr/bin/env bash
# Builds the service and starts it the way `npm start` does (compiled by tsc, not by the test transpiler),
# then checks /health answers: catches what only the compiled output gets wrong (module order, missing files).
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build --silent
PORT=${SMOKE_PORT:-3917}
log=$(mktemp)
PORT=$PORT FHIR_SANDBOX_PORT=0 QUEUE_PREFIX="kc-smoke-$$" node_modules/.bin/node dist/service/main.js >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if body=$(curl -sf "http://127.0.0.1:$PORT/health" 2>/dev/null); then
    echo "smoke: service up, /health -> $body"
    # The clinician page's sign-in: the built-in dev issuer answers discovery in a default start.
    curl -sf "http://127.0.0.1:$PORT/dev-issuer/.well-known/openid-configuration" >/dev/null ||
      { echo "smoke: the dev issuer's discovery did not answer" >&2; cat "$log" >&2; exit 1; }
    kill -TERM $pid; wait $pid || true
    exit 0
  fi
  if ! kill -0 $pid 2>/dev/null; then break; fi
  sleep 0.2
done
echo "smoke: the built service did not become healthy; its log:" >&2
cat "$log" >&2
exit 1
