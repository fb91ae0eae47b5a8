#!/usr/bin/env bash
# The replica as a twin of the Django deployment, measured:
#   1. the Django measurements' three cases with wrk at 16 connections (show detail, the cached
#      show list, the uncached show list) against the replica under each shipped profile;
#   2. the calibration round trip: `pique profile calibrate` against the replica running that
#      profile, then the same three cases under the fitted profile;
#   3. the breaking point loadtests/capacity.toml finds, under the source and the fitted
#      profile (with --time-scale, so a 2-minute step lasts 2 min x SCALE).
# The database has 200 published shows, as the Django measurements had (the medium preset
# with the rest unpublished), and stripe-sim answers the checkout users.
#
# Usage: scripts/twin-figures.sh [seconds per wrk run] [capacity time scale] [profiles...]
#   e.g. scripts/twin-figures.sh 20 0.1 django-railway django-recommended
# Needs: a release build (cargo build --release --bin pique), wrk, psql, redis-cli, jq,
# PostgreSQL and Redis (TWIN_DATABASE, TWIN_REDIS_URL; Redis database 11 is flushed).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}; scale=${2:-0.1}; shift $(( $# > 2 ? 2 : $# ))
profiles=("$@"); [ ${#profiles[@]} -gt 0 ] || profiles=(django-railway django-recommended)
bin=${PIQUE_BIN:-${CARGO_TARGET_DIR:-target}/release/pique}
pg=${TWIN_DATABASE:-postgres://postgres@127.0.0.1:5432}
redis=${TWIN_REDIS_URL:-redis://127.0.0.1:6379/11}
port=${TWIN_PORT:-18480}; sim_port=$((port + 1)); host=http://127.0.0.1:$port
for tool in wrk psql redis-cli jq; do
  command -v $tool >/dev/null || { echo "needs $tool"; exit 1; }
done
[ -x "$bin" ] || { echo "build first: cargo build --release --bin pique"; exit 1; }
out=${TWIN_OUT:-runs/twin-$(date -u +%Y%m%dT%H%M%SZ)}; mkdir -p "$out"
server=; sim=
stop() { [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; server=; }
trap 'stop; [ -n "$sim" ] && kill "$sim" 2>/dev/null; true' EXIT

# A template database with 200 published shows; each run starts from a copy.
if ! psql "$pg/pique_twin_tpl" -c 'select 1' >/dev/null 2>&1; then
  "$bin" --database-url "$pg/pique_twin_tpl" seed --preset medium >/dev/null
  psql -q "$pg/pique_twin_tpl" -c "UPDATE shows SET published = false WHERE id > 200"
fi
fresh_db() {
  psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS pique_twin" \
    -c "CREATE DATABASE pique_twin TEMPLATE pique_twin_tpl"
  redis-cli -u "$redis" FLUSHDB >/dev/null
}
STRIPE_SIM_BIND=127.0.0.1:$sim_port "$bin" stripe-sim >"$out/stripe-sim.log" 2>&1 & sim=$!

serve() { # profile (name or path)
  stop
  DATABASE_URL=$pg/pique_twin REDIS_URL=$redis PIQUE_BIND=127.0.0.1:$port \
    STRIPE_API_BASE=http://127.0.0.1:$sim_port PIQUE_PROFILE=$1 LOG_FORMAT=json RUST_LOG=warn \
    "$bin" serve >>"$out/serve.log" 2>&1 & server=$!
  until curl -fs "$host/health/" >/dev/null 2>&1; do sleep 0.2; done
  curl -fs "$host/api/v1/shows/" >/dev/null # the list in the cache
}

# Every uncached request: a start_time__gt filter no one sent before (all shows are after 2000).
cat >"$out/cold.lua" <<'LUA'
local threads, id, n, base = {}, 0, 0, os.time() % 86400
function setup(thread) thread:set("id", #threads) table.insert(threads, thread) end
function init() id = wrk.thread:get("id") end
function request()
  n = n + 1
  local us = id * 500000 + n
  return wrk.format("GET", string.format("/api/v1/shows/?start_time__gt=2000-01-01T%02d:%02d:%02d.%06dZ",
    math.floor(base / 3600), math.floor(base / 60) % 60, base % 60, us))
end
LUA

wrk16() { # label, url, [lua]
  local args=(-t2 -c16 -d"${secs}s" --latency)
  [ -n "${3:-}" ] && args+=(-s "$3")
  wrk "${args[@]}" "$2" >"$out/wrk-$1.txt"
  local rps p50 p99 errs
  rps=$(awk '/Requests\/sec/ {print $2}' "$out/wrk-$1.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$out/wrk-$1.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$out/wrk-$1.txt")
  errs=$(awk '/Socket errors|Non-2xx/ {printf "%s ", $0}' "$out/wrk-$1.txt")
  printf '%-44s %9s req/s   p50 %8s   p99 %8s   %s\n' "$1" "$rps" "$p50" "$p99" "$errs" | tee -a "$out/figures.txt"
}

three() { # label prefix
  wrk16 "$1 show detail" "$host/api/v1/shows/1/"
  wrk16 "$1 cached list" "$host/api/v1/shows/"
  wrk16 "$1 uncached list" "$host/api/v1/shows/" "$out/cold.lua"
}

capacity() { # label, profile
  stop; fresh_db; serve "$2"
  "$bin" load run loadtests/capacity.toml --host "$host" --time-scale "$scale" --quiet \
    --out "$out/runs-$1" --label "$1" >/dev/null || true
  local summary; summary=$(ls -d "$out/runs-$1"/*/summary.json | tail -1)
  jq -r --arg l "$1" '"\($l): breaking point \(.capacity.breaking_users // "none") users (\(.capacity.reason // .capacity.stopped_by // "-")), last good \(.capacity.last_good_users // "-") users at \([.capacity.steps[] | select(.broke | not) | .rps] | last // 0 | floor) req/s; server \(.server.profile // "?")"' \
    "$summary" | tee -a "$out/figures.txt"
}

echo "wrk -t2 -c16 -d${secs}s; $(nproc) cores; $(date -u)" | tee "$out/figures.txt"
fresh_db
for p in "${profiles[@]}"; do
  gunicorn=$("$bin" profile show "$p" | sed -n 2p)
  shape=$(echo "$gunicorn" | grep -oE '[0-9]+x[0-9]+' | head -1)
  workers=${shape%x*}; threads=${shape#*x}
  serve "$p"
  echo "== $p ($gunicorn); show list $(curl -s "$host/api/v1/shows/" | wc -c) bytes" | tee -a "$out/figures.txt"
  three "$p"
  "$bin" profile calibrate --host "$host" --out "$out/fitted-$p.toml" \
    --workers "$workers" --threads "$threads" --cores 2 2>"$out/calibrate-$p.log"
  serve "$out/fitted-$p.toml"
  three "fitted from $p"
  capacity "$p" "$p"
  capacity "fitted-$p" "$out/fitted-$p.toml"
done
echo "figures: $out/figures.txt"
