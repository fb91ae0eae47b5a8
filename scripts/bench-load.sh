#!/usr/bin/env bash
# Load-generator benchmark: requests/s of `pique load`, wrk and (when installed)
# Locust FastHttpUser against the same trivial static-200 server, each with 50
# connections/users and no think time, each pinned to core 1 while the server has core 0;
# then memory per simulated user at 10 and 10,000 users (max RSS, /usr/bin/time).
# Usage: scripts/bench-load.sh [seconds] [rounds]   (needs wrk; locust optional: pip install locust)
set -euo pipefail
ulimit -n "$(ulimit -Hn)"   # 10,000 users need 10,000 sockets in each process
cd "$(dirname "$0")/.."
secs=${1:-10}; rounds=${2:-3}
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)"; exit 1; }
cargo build --release -p pique-load --example static_server --example load_run
tdir=${CARGO_TARGET_DIR:-target}/release/examples
tmp=$(mktemp -d)
taskset -c 0 "$tdir/static_server" 127.0.0.1:8099 2>/dev/null & server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$tmp"' EXIT
until curl -fs http://127.0.0.1:8099/ >/dev/null; do sleep 0.1; done

cat > "$tmp/bench.toml" <<TOML
name = "bench"
run_time = "${secs}s"
[[stages]]
duration = "${secs}s"
users = 50
spawn_rate = 1000
[[users]]
name = "U"
[[users.tasks]]
steps = [{ path = "/" }]
TOML
cat > "$tmp/locustfile.py" <<'PY'
from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser
class U(FastHttpUser):
    wait_time = constant(0)
    @task
    def root(self):
        self.client.get("/")
PY

echo "static-200 on core 0; generators on core 1; 50 connections; ${secs}s per run; requests/s"
printf '%-6s %10s %12s %8s %10s\n' round wrk pique-load ratio locust
for r in $(seq "$rounds"); do
  w=$(taskset -c 1 wrk -t1 -c50 -d"${secs}s" http://127.0.0.1:8099/ | awk '/Requests\/sec/ {print $2}')
  p=$(taskset -c 1 "$tdir/load_run" "$tmp/bench.toml" --host http://127.0.0.1:8099 --quiet \
      --out "$tmp/runs" | grep -o '[0-9.]* req/s' | cut -d' ' -f1)
  l=-
  if command -v locust >/dev/null; then
    l=$(cd "$tmp" && taskset -c 1 locust -f locustfile.py --host http://127.0.0.1:8099 --headless \
        -u 50 -r 50 -t "${secs}s" --only-summary 2>&1 | awk '/Aggregated/ {print $(NF-1); exit}')
  fi
  printf '%-6s %10.0f %12.0f %7.0f%% %10s\n' "$r" "$w" "$p" "$(echo "100*$p/$w" | bc -l)" "$l"
done

# Memory per idle user: each made one request and keeps its connection open while it thinks.
mem() { # users, first-wait
  cat > "$tmp/mem.toml" <<TOML
name = "mem"
run_time = "20s"
max_requests = 1000000
[[stages]]
duration = "20s"
users = $1
spawn_rate = 2000
[[users]]
name = "U"
wait = { constant = $2 }
[[users.tasks]]
steps = [{ path = "/" }]
TOML
  /usr/bin/time -f %M "$tdir/load_run" "$tmp/mem.toml" --host http://127.0.0.1:8099 --quiet \
    --out "$tmp/runs" 2>&1 >/dev/null | tail -1
}
a=$(mem 10 300); b=$(mem 10000 300)
echo "idle users (one request made, connection kept open, thinking 300 s), max RSS:"
echo "  10 users $a KiB, 10,000 users $b KiB: $(( (b - a) * 1024 / 9990 )) bytes per user"
