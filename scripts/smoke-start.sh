#!/usr/bin/env bash
# Builds the service and starts it the way `npm start` does (compiled by tsc, not by the test transpiler), then:
# - checks /health answers: catches what only the compiled output gets wrong (module order, missing files);
# - writes a Patient to the embedded FHIR server, stops the service (SIGTERM), starts it again on the same data
#   directory and reads the Patient back: compiled, the embedded server runs in a worker thread of its own
#   (libs/fhir-sandbox/src/fhir-sandbox-thread.ts), which the tests (TypeScript sources, in-process) do not run;
# - reads the store's gauges on /metrics, which come from that thread, and sees it notify the webhook (Subscriptions);
# - finds the store's first scheduled backup (written at start when there is none), also made in that thread;
# - restores it with the compiled `npm run fhir-store:restore` command: refused while the service runs, done once it
#   is stopped (the Patient written after the backup is gone, the replaced store kept beside the restored one).
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build --silent
PORT=${SMOKE_PORT:-3917}
data=$(mktemp -d)
log=$(mktemp)
pid=
backups="$data-backups"
# Leave nothing behind in the shared Redis either: the service's queues and schedulers, and the sweeps a restore
# queued, all under this run's prefix.
forget_redis() {
  node_modules/.bin/node -e '
    const { Redis } = require("ioredis");
    const redis = new Redis(process.env.REDIS_URL || "redis://127.0.0.1:6379", { maxRetriesPerRequest: 1 });
    (async () => {
      for await (const keys of redis.scanStream({ match: process.argv[1] + ":*", count: 1000 }))
        if (keys.length) await redis.del(...keys);
    })().finally(() => redis.disconnect());' "kc-smoke-$$" || true
}
trap 'if [ -n "$pid" ]; then kill $pid 2>/dev/null || true; fi; rm -rf "$data" "$backups"; forget_redis' EXIT

start() {
  PORT=$PORT FHIR_SANDBOX_PORT=0 FHIR_DATA_DIR="$data" FHIR_BACKUP_DIR="$backups" QUEUE_PREFIX="kc-smoke-$$" \
    node_modules/.bin/node dist/service/main.js >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    if body=$(curl -sf "http://127.0.0.1:$PORT/health" 2>/dev/null); then
      echo "smoke: service up, /health -> $body"
      fhir=$(node_modules/.bin/node -e '
        for (const line of require("fs").readFileSync(process.argv[1], "utf8").split("\n")) {
          try { const l = JSON.parse(line); if (l.fhirBaseUrl) { console.log(l.fhirBaseUrl); break; } } catch {}
        }' "$log")
      [ -n "$fhir" ] || { echo "smoke: no fhirBaseUrl in the start-up log" >&2; cat "$log" >&2; exit 1; }
      grep -q '"embeddedFhir":"runs in a worker thread"' "$log" ||
        { echo "smoke: the embedded FHIR server is not in its worker thread" >&2; cat "$log" >&2; exit 1; }
      return 0
    fi
    if ! kill -0 $pid 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "smoke: the built service did not become healthy; its log:" >&2
  cat "$log" >&2
  exit 1
}

stop() {
  kill -TERM $pid
  wait $pid || true
  pid=
}

start
# The first start has no backup on disk: the schedule writes one at once (libs/fhir-sandbox/src/store-backups.ts).
for _ in $(seq 1 50); do
  backup=$(find "$backups" -name 'fhir-*.sqlite' 2>/dev/null | head -1)
  [ -n "$backup" ] && break
  sleep 0.2
done
[ -n "$backup" ] || { echo "smoke: no scheduled backup in $backups" >&2; cat "$log" >&2; exit 1; }
grep -q '"msg":"FHIR store backup written"' "$log" ||
  { echo "smoke: the backup was not logged as written" >&2; cat "$log" >&2; exit 1; }
echo "smoke: scheduled backup written by the store's thread: $(basename "$backup") ($(stat -c %s "$backup") bytes)"
# The clinician page's sign-in: the built-in dev issuer answers discovery in a default start.
curl -sf "http://127.0.0.1:$PORT/dev-issuer/.well-known/openid-configuration" >/dev/null ||
  { echo "smoke: the dev issuer's discovery did not answer" >&2; cat "$log" >&2; exit 1; }
patient=$(curl -sf -X POST -H 'content-type: application/fhir+json' \
  -d '{"resourceType":"Patient","name":[{"family":"Smoke"}]}' "$fhir/Patient" |
  node_modules/.bin/node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).id))')
stop
start
curl -sf "$fhir/Patient/$patient" | grep -q '"family":"Smoke"' ||
  { echo "smoke: Patient/$patient did not survive the restart" >&2; cat "$log" >&2; exit 1; }
echo "smoke: restarted on the same data directory, Patient/$patient read back"
# The store's gauges come from its worker thread (a message round trip the in-process tests do not make).
metrics=$(curl -sf "http://127.0.0.1:$PORT/metrics")
grep -Eq '^kc_fhir_store_database_bytes [1-9]' <<<"$metrics" && grep -Eq '^kc_fhir_store_cpu_seconds_total [0-9.]*[1-9]' <<<"$metrics" ||
  { echo "smoke: /metrics lacks the embedded store's gauges" >&2; grep kc_fhir_store <<<"$metrics" >&2 || true; exit 1; }
echo "smoke: /metrics: $(grep -E '^kc_fhir_store_(database_bytes|commits_total)' <<<"$metrics" | tr '\n' ' ')"
# The store's Subscriptions run in its thread too: a Task written straight to the store reaches the webhook.
grep -q '"msg":"Subscribed to the embedded FHIR store"' "$log" ||
  { echo "smoke: the service did not subscribe to the embedded store" >&2; cat "$log" >&2; exit 1; }
curl -sf -X POST -H 'content-type: application/fhir+json' \
  -d '{"resourceType":"Task","status":"requested","intent":"order","description":"Smoke"}' "$fhir/Task" >/dev/null
for _ in $(seq 1 50); do
  delivered=$(curl -sf "http://127.0.0.1:$PORT/metrics" | grep -E '^kc_fhir_store_notifications_delivered_total ' | cut -d' ' -f2)
  [ "${delivered:-0}" != 0 ] && break
  sleep 0.2
done
[ "${delivered:-0}" != 0 ] || { echo "smoke: no notification delivered by the store's thread" >&2; cat "$log" >&2; exit 1; }
echo "smoke: the store's thread notified the webhook ($delivered delivered)"
restore() {
  # The service's own environment: the restore also resets that service's state in Redis (its QUEUE_PREFIX only).
  FHIR_DATA_DIR="$data" FHIR_BACKUP_DIR="$backups" QUEUE_PREFIX="kc-smoke-$$" \
    node_modules/.bin/node dist/scripts/restore-fhir-store.js "$@"
}
if out=$(restore latest 2>&1); then
  echo "smoke: the restore ran while the service was running: $out" >&2
  exit 1
fi
grep -q 'is in use by a running service' <<<"$out" || { echo "smoke: restore refused, but not saying why: $out" >&2; exit 1; }
echo "smoke: restore refused while the service runs"
stop
restore latest
ls "$data" | grep -q '^fhir.sqlite.replaced-' || { echo "smoke: the replaced store was not kept" >&2; ls "$data" >&2; exit 1; }
start
# The backup was written before the Patient: the restored store does not hold it.
status=$(curl -s -o /dev/null -w '%{http_code}' "$fhir/Patient/$patient")
[ "$status" = 404 ] || { echo "smoke: Patient/$patient answered $status after restoring an older backup" >&2; exit 1; }
echo "smoke: restored the first backup and restarted; Patient/$patient (written after it) is gone, as it should be"
stop
