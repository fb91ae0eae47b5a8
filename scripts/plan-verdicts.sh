#!/usr/bin/env bash
# Every shipped full-size plan in loadtests/ (and the Artillery sample, as it is) against the
# replica, time-scaled so the whole set takes about ten minutes, and a Markdown table of the
# verdicts with the rows each plan grades.
#
# Starts its own replica from PIQUE (default target/release/pique): a fresh database
# `pique_verdicts` (seeded with the small preset), a Redis database number, stripe-sim, the API
# and one worker on every queue, all on free ports, and stops them at the end. The load runs get
# the API's and the worker's /metrics, PostgreSQL and Redis, as a user running the plans against
# a deployment would give them.
#
# Usage: scripts/plan-verdicts.sh [PLAN ...]     (default: every plan below)
#   PG (default postgres://postgres@127.0.0.1:5432), REDIS (default redis://127.0.0.1:6379/9),
#   OUT (default a temporary directory; the runs' reports stay there when set).
set -euo pipefail
cd "$(dirname "$0")/.."
pique=${PIQUE:-${CARGO_TARGET_DIR:-target}/release/pique}
pg=${PG:-postgres://postgres@127.0.0.1:5432}
redis=${REDIS:-redis://127.0.0.1:6379/9}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
ulimit -n "$(ulimit -Hn)"

# plan file, time scale, extra arguments. The scale keeps each run between one and two minutes;
# capacity stops at its breaking point or after 3 minutes of scaled steps.
declare -A scale=(
  [baseline.toml]=0.05 [read-heavy.toml]=0.1 [checkout.toml]=0.1 [spike.toml]=0.1
  [soak.toml]=0.01 [mixed.toml]=0.01 [capacity.toml]=0.1 [locust-sample.toml]=0.1
  [k6-sample.toml]=0.1 [artillery-sample.yml]=0.3
)
plans=("$@")
[ ${#plans[@]} -gt 0 ] || plans=(baseline.toml read-heavy.toml checkout.toml spike.toml soak.toml
  mixed.toml capacity.toml locust-sample.toml k6-sample.toml artillery-sample.yml)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api_port=$(free_port); stripe_port=$(free_port); worker_port=$(free_port)
api=http://127.0.0.1:$api_port
stripe=http://127.0.0.1:$stripe_port
export DATABASE_URL=$pg/pique_verdicts REDIS_URL=$redis STRIPE_API_BASE=$stripe \
  STRIPE_WEBHOOK_URL=$api/stripe/webhook/ PIQUE_RATE_LIMIT=off RUST_LOG=warn MAIL_DIR=$out/mail \
  MEDIA_DIR=$out/media

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

psql "$pg/postgres" -qc 'DROP DATABASE IF EXISTS pique_verdicts' >/dev/null 2>&1
redis-cli -u "$redis" FLUSHDB >/dev/null
"$pique" migrate >/dev/null
"$pique" seed --preset small >/dev/null
"$pique" stripe-sim --bind "127.0.0.1:$stripe_port" >"$out/stripe-sim.log" 2>&1 & pids+=($!)
"$pique" serve --bind "127.0.0.1:$api_port" >"$out/api.log" 2>&1 & pids+=($!)
"$pique" worker --metrics-bind "127.0.0.1:$worker_port" >"$out/worker.log" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do curl -fs "$api/health/" >/dev/null && break; sleep 0.2; done
curl -fs "$api/health/" >/dev/null || { echo "the API did not come up: $out/api.log" >&2; exit 2; }
# Each plan starts from the same state: freshly seeded shows (earlier plans' buyers would
# otherwise sell tiers out, and the 409s count as errors), an empty Redis database, and a warm
# cache, as a running deployment's would be (every show read once).
fresh_state() {
  "$pique" seed --preset small --reset >/dev/null
  redis-cli -u "$redis" FLUSHDB >/dev/null
  sleep 1.2 # the API's in-process cache rechecks the generation at least every second
  curl -fs "$api/api/v1/shows/" | python3 -c 'import json,sys; print("\n".join(str(s["id"]) for s in json.load(sys.stdin)))' |
    while read -r id; do curl -fs "$api/api/v1/shows/$id/" >/dev/null; done
}

echo "| plan | time scale | wall | verdict | graded rows (grade) |"
echo "|---|---|---|---|---|"
for plan in "${plans[@]}"; do
  f=${scale[$plan]:-0.1}
  fresh_state
  log=$out/logs/${plan//\//-}.out
  mkdir -p "$out/logs"
  args=(--host "$api" --quiet --out "$out/runs/$plan" --time-scale "$f"
    --metrics-url "$api/metrics" --metrics-url "http://127.0.0.1:$worker_port/metrics"
    --database-url "$pg/pique_verdicts" --redis-url "$redis" --var "stripe_base=$stripe")
  [ "$plan" = capacity.toml ] && args+=(--run-time 180s)
  start=$(date +%s)
  "$pique" load run "loadtests/$plan" "${args[@]}" >"$log" 2>&1 || true
  wall=$(( $(date +%s) - start ))
  summary=$(ls "$out"/runs/"$plan"/*/summary.json 2>/dev/null | tail -n 1)
  if [ -z "$summary" ]; then echo "| $plan | $f | ${wall}s | no report: $(tail -n 1 "$log") | |"; continue; fi
  python3 - "$summary" "$plan" "$f" "$wall" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
rows = [f'{g["id"]} {g["grade"]}' for g in s.get("grades", []) if g.get("in_verdict")]
print(f'| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]}s | {s.get("verdict", "?")} | {", ".join(rows)} |')
PY
done
echo "runs and logs: $out" >&2
