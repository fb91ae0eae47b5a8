#!/usr/bin/env bash
# Show detail benchmark: wrk on 127.0.0.1, in the same run and alternating, round
# after round, against
#   1. the same bytes as one show's detail, served from memory by a minimal axum server
#      (the ceiling for a response of that size on this stack and machine),
#   2. GET /api/v1/shows/{id}/ of that show (every buyer of a hot show asks for it),
#   3. GET /api/v1/shows/{id}/ of a different show on every request (a lua script cycles
#      through the public shows of the medium preset).
# Availability is never cached: each detail answer reads the tiers after its request came in.
# Usage: scripts/bench-detail.sh [seconds] [connections] [rounds]   (needs wrk, PostgreSQL, Redis)
# Env: BENCH_DATABASE_URL (a database this script may reseed), BENCH_PORT (8095; +1 for the
# static server), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}; conns=${2:-64}; rounds=${3:-3}
port=${BENCH_PORT:-8095}; static_port=$((port + 1))
export DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/pique_bench}
export PIQUE_BIND=127.0.0.1:$port RUST_LOG=warn PIQUE_RATE_LIMIT=off
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)"; exit 1; }
cargo build --release --bin pique --example static_file
tdir=${CARGO_TARGET_DIR:-target}
bin=$tdir/release/pique
$bin seed --preset medium --reset >/dev/null
$bin serve & api=$!
static=
tmp=$(mktemp -d); trap 'kill $api $static 2>/dev/null || true; rm -rf "$tmp"' EXIT
until curl -fs "http://127.0.0.1:$port/health/" >/dev/null; do sleep 0.2; done
curl -fs "http://127.0.0.1:$port/api/v1/shows/" > "$tmp/shows.json"
ids=$(grep -o '"id":[0-9]*,"title"' "$tmp/shows.json" | grep -o '[0-9]*' | tr '\n' ',' | sed 's/,$//')
hot=${ids%%,*}
curl -fs "http://127.0.0.1:$port/api/v1/shows/$hot/" > "$tmp/detail.json"
"$tdir"/release/examples/static_file "$tmp/detail.json" "127.0.0.1:$static_port" & static=$!
until curl -fs "http://127.0.0.1:$static_port/" >/dev/null; do sleep 0.2; done
cat > "$tmp/many.lua" <<LUA
ids = {$ids}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/api/v1/shows/" .. ids[(counter % #ids) + 1] .. "/")
end
LUA
echo "detail of show $hot: $(wc -c < "$tmp/detail.json") bytes; $(echo "$ids" | tr ',' '\n' | wc -l) public shows;" \
  "${secs}s per run, $conns connections, 2 wrk threads, $rounds rounds"
run() { # label, wrk args...: reports on stderr, prints req/s on stdout
  local label=$1; shift
  local out; out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "$@")
  local rps p50 p99 errs
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errs=$( (grep -E "Non-2xx|Socket errors" <<<"$out" || true) | tr -s ' ' | tr '\n' ';')
  printf '%-28s %10.0f req/s  p50 %8s  p99 %8s  %s\n' "$label" "$rps" "$p50" "$p99" "$errs" >&2
  echo "$rps"
}
for r in $(seq "$rounds"); do
  echo "== round $r"
  s=$(run "static ceiling" "http://127.0.0.1:$static_port/")
  d=$(run "detail, one show" "http://127.0.0.1:$port/api/v1/shows/$hot/")
  m=$(run "detail, every show in turn" -s "$tmp/many.lua" "http://127.0.0.1:$port/")
  printf 'round %s: detail one show %.1f %% of the ceiling, every show in turn %.1f %%\n' \
    "$r" "$(echo "100*$d/$s" | bc -l)" "$(echo "100*$m/$s" | bc -l)"
done 2>&1
