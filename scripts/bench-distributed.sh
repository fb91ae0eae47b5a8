#!/usr/bin/env bash
# One generator process vs a master with two load-worker processes, on this machine, against a
# trivial endpoint (stripe-sim's GET /_sim/config on 127.0.0.1): 20 users, no think time, 10 s
# each, ROUNDS rounds. Needs Redis on 127.0.0.1:6379 for the workers. Prints requests/s of
# both, each worker's share and CPU, and the master's own CPU (its summary and /usr/bin/time).
#   bash scripts/bench-distributed.sh [ROUNDS] [PIQUE binary, default target/debug/pique]
set -euo pipefail
ROUNDS=${1:-2}
BIN=$(realpath "${2:-target/debug/pique}")
REDIS=${REDIS_URL:-redis://127.0.0.1:6379/0}
PORT=12199
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
cat > plan.toml <<'PLAN'
name = "trivial"
[[stages]]
duration = "10s"
users = 20
spawn_rate = 100
[[users]]
name = "reader"
[[users.tasks]]
name = "config"
steps = [{ path = "/_sim/config" }]
PLAN
"$BIN" stripe-sim --bind 127.0.0.1:$PORT >sim.log 2>&1 &
sleep 1
CLUSTER=bench-$$
for round in $(seq 1 "$ROUNDS"); do
  rm -rf one two
  /usr/bin/time -f "one process: CPU %U s user %S s sys in %e s" "$BIN" load run plan.toml \
    --host http://127.0.0.1:$PORT --quiet --out one >one.log 2>one.time
  "$BIN" load worker --redis-url "$REDIS" --cluster $CLUSTER --name a >wa.log 2>&1 &
  WA=$!
  "$BIN" load worker --redis-url "$REDIS" --cluster $CLUSTER --name b >wb.log 2>&1 &
  WB=$!
  sleep 1
  /usr/bin/time -f "master: CPU %U s user %S s sys in %e s" "$BIN" load run plan.toml \
    --host http://127.0.0.1:$PORT --quiet --out two --workers 2 --redis-url "$REDIS" \
    --cluster $CLUSTER >two.log 2>two.time
  kill $WA $WB
  wait $WA $WB 2>/dev/null || true
  ROUND=$round python3 - <<'PY'
import glob, json, os
one = json.load(open(glob.glob('one/*/summary.json')[0]))
two = json.load(open(glob.glob('two/*/summary.json')[0]))
a1, a2, d = one['aggregated'], two['aggregated'], two['distributed']
r = os.environ['ROUND']
print(f"round {r}: one process {a1['count']} requests = {a1['rps']:.0f} req/s (p50 {a1['percentiles_ms'][0]} ms)")
workers = ", ".join(f"{w['name']} {w['requests']} req CPU {w['cpu_avg']:.2f}" for w in d['workers'])
print(f"round {r}: two workers {a2['count']} requests = {a2['rps']:.0f} req/s (p50 {a2['percentiles_ms'][0]} ms; {workers}); "
      f"master CPU {d['master_cpu_avg']:.3f} cores avg, {d['master_cpu_max']:.3f} max")
PY
  grep -h -E "^(one process|master):" one.time two.time
done
uptime
