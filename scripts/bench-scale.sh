#!/usr/bin/env bash
# Scale-out benchmark: one API process, then two, on the same PostgreSQL and Redis and this
# machine's cores (so expect little gain on 2 cores: the processes, wrk, the generator,
# PostgreSQL and Redis all share them). Two figures for each:
#   1. GET /api/v1/shows/ from the cache (medium preset, ~870 KB): wrk, 64 connections in
#      all; with two processes, one wrk per process (32 connections each) at the same time,
#      requests/s added up;
#   2. checkout without think time (loadtests/bench/checkout-burst.toml, 50 users, the
#      reservation strategy, stripe-sim at 0 ms): `pique load run`, with two processes
#      `--host A --host B` (users round-robin).
# Usage: scripts/bench-scale.sh [seconds]   (needs wrk, PostgreSQL, Redis)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
export DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/pique_bench_scale}
export REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}
export PIQUE_REDIS_PREFIX=pique-bench-scale RUST_LOG=warn PIQUE_RATE_LIMIT=off
export CHECKOUT_STRATEGY=reservation STRIPE_API_BASE=http://127.0.0.1:12191
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)"; exit 1; }
cargo build --release -p pique
bin=${CARGO_TARGET_DIR:-target}/release/pique
tmp=$(mktemp -d)
pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap 'stop; rm -rf "$tmp"' EXIT
api() { # port
  PIQUE_PUBLIC_URL=http://127.0.0.1:8191 "$bin" serve --bind "127.0.0.1:$1" & pids+=($!)
  until curl -fs "http://127.0.0.1:$1/health/" >/dev/null; do sleep 0.2; done
  curl -fs "http://127.0.0.1:$1/api/v1/shows/" >/dev/null   # warm this process's cache
}
"$bin" migrate >/dev/null
"$bin" seed --preset medium --reset >/dev/null
STRIPE_WEBHOOK_URL=http://127.0.0.1:8191/stripe/webhook/ "$bin" stripe-sim --bind 127.0.0.1:12191 >/dev/null & pids+=($!)
until curl -fs http://127.0.0.1:12191/_sim/config >/dev/null; do sleep 0.2; done

list() { # urls...
  local c=$((64 / $#)) t=$((2 / $# > 0 ? 2 / $# : 1)) files=() runs=()
  for u in "$@"; do
    f=$tmp/wrk-$RANDOM; files+=("$f")
    wrk -t"$t" -c"$c" -d"${secs}s" --latency "$u/api/v1/shows/" > "$f" & runs+=($!)
  done
  for r in "${runs[@]}"; do wait "$r"; done
  for f in "${files[@]}"; do
    awk '/Requests\/sec/ {r=$2} / 50%/ {p50=$2} / 99%/ {p99=$2} END {printf "  %s req/s (p50 %s, p99 %s)\n", r, p50, p99}' "$f"
  done
  awk '/Requests\/sec/ {s+=$2} END {printf "  total %.0f req/s\n", s}' "${files[@]}"
}
checkout() { # hosts...
  local args=()
  for h in "$@"; do args+=(--host "$h"); done
  "$bin" load run loadtests/bench/checkout-burst.toml "${args[@]}" -u 50 -r 50 -t "${secs}s" \
    --quiet --out "$tmp/runs" >/dev/null || true
  jq -r '.requests[] | select(.name == "/checkout/ [session]") |
    "  /checkout/: \(.count) checkouts, \(.rps | floor) /s, p50 \(.percentiles_ms[0]) ms, p95 \(.percentiles_ms[5]) ms, p99 \(.percentiles_ms[7]) ms, \(.failures) failures"' \
    "$(ls -td "$tmp"/runs/*/ | head -1)summary.json"
}

echo "== one API process (${secs}s per figure)"
api 8191
echo "GET /api/v1/shows/ cached, 64 connections"; list http://127.0.0.1:8191
echo "checkout-burst, 50 users"; checkout http://127.0.0.1:8191
echo "== two API processes"
api 8192
echo "GET /api/v1/shows/ cached, 32 connections per process"; list http://127.0.0.1:8191 http://127.0.0.1:8192
echo "checkout-burst, 50 users round-robin"; checkout http://127.0.0.1:8191 http://127.0.0.1:8192
