#!/usr/bin/env bash
# Read-path benchmark: wrk on 127.0.0.1 against
#   1. GET /api/v1/shows/ cached (medium preset: 1,000 shows),
#   2. the same list uncached (every request a different start_time__gt, so every one misses),
#   3. GET /health/ (PostgreSQL and Redis round trips),
#   4. the same bytes as (1) served from memory by a minimal axum server: the ceiling.
# Usage: scripts/bench-reads.sh [seconds] [connections]   (needs wrk, PostgreSQL, Redis)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}; conns=${2:-64}
export DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/pique_bench}
export PIQUE_BIND=127.0.0.1:8097 RUST_LOG=warn PIQUE_RATE_LIMIT=off
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)"; exit 1; }
cargo build --release --bin pique --example static_file
tdir=${CARGO_TARGET_DIR:-target}
bin=$tdir/release/pique
$bin seed --preset medium --reset >/dev/null
$bin serve & api=$!
tmp=$(mktemp -d); trap 'kill $api $static 2>/dev/null || true; rm -rf "$tmp"' EXIT
until curl -fs http://127.0.0.1:8097/health/ >/dev/null; do sleep 0.2; done
curl -fs http://127.0.0.1:8097/api/v1/shows/ > "$tmp/shows.json"
"$tdir"/release/examples/static_file "$tmp/shows.json" 127.0.0.1:8098 & static=$!
until curl -fs http://127.0.0.1:8098/ >/dev/null; do sleep 0.2; done
cat > "$tmp/uncached.lua" <<'LUA'
counter = 0
request = function()
  counter = counter + 1
  local t = string.format("2020-01-01T00:00:%02d.%06dZ", counter % 60, counter)
  return wrk.format("GET", "/api/v1/shows/?start_time__gt=" .. t)
end
LUA
echo "body: $(wc -c < "$tmp/shows.json") bytes, $(grep -o '"id":[0-9]*,"title"' "$tmp/shows.json" | wc -l) shows; ${secs}s, $conns connections, 2 threads"
run() { echo "== $1"; shift; wrk -t2 -c"$conns" -d"${secs}s" --latency "$@" | grep -E "Requests/sec|Transfer/sec| 50%| 99%|Non-2xx|Socket errors"; }
run "ceiling: static bytes from memory" http://127.0.0.1:8098/
run "GET /api/v1/shows/ cached" http://127.0.0.1:8097/api/v1/shows/
run "GET /api/v1/shows/ uncached (every request a miss)" -s "$tmp/uncached.lua" http://127.0.0.1:8097/
run "GET /health/" http://127.0.0.1:8097/health/
