#!/usr/bin/env bash
# Does the load generator measure the server or itself? Runs loadtests/bench/show-browsing.toml
# (the original plan's ShowBrowsingUser, which stores the whole show list after every list
# request) with USERS users against a running replica, then compares the generator's
# percentiles of /api/v1/featured-shows/ with the server's own histogram of that route
# (http_request_duration_seconds on /metrics, interpolated within its buckets), and prints the
# generator's peak memory and CPU (from /usr/bin/time).
#
# Usage: scripts/bench-generator.sh USERS [SECONDS] [PIQUE_BINARY]
#   HOST (default http://127.0.0.1:8080) must serve the replica seeded with
#   `pique seed --preset medium` (about 870 KB of show list); build with --release.
set -euo pipefail
users=${1:?usage: scripts/bench-generator.sh USERS [SECONDS] [PIQUE_BINARY]}
secs=${2:-30}
pique=${3:-${CARGO_TARGET_DIR:-target}/release/pique}
host=${HOST:-http://127.0.0.1:8080}
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
route=/api/v1/featured-shows/
curl -fs "$host/metrics" >"$tmp/before.txt"
/usr/bin/time -v "$pique" load run loadtests/bench/show-browsing.toml --host "$host" \
  -u "$users" -r "$users" -t "${secs}s" --quiet --out "$tmp/runs" >"$tmp/out.txt" 2>"$tmp/time.txt" || true
curl -fs "$host/metrics" >"$tmp/after.txt"
python3 - "$tmp" "$route" "$users" <<'PY'
import glob, json, re, sys
tmp, route, users = sys.argv[1], sys.argv[2], int(sys.argv[3])

def buckets(path):
    out = {}
    pat = re.compile(r'^http_request_duration_seconds_bucket\{(.*)\} (\S+)$')
    for line in open(path):
        m = pat.match(line.strip())
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if labels.get("route") != route or labels.get("method") != "GET":
            continue
        le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
        out[le] = out.get(le, 0.0) + float(m.group(2))
    return out

before, after = buckets(f"{tmp}/before.txt"), buckets(f"{tmp}/after.txt")
delta = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
total = delta[-1][1] if delta else 0

def server_q(q):
    rank, prev_le, prev_n = q * total, 0.0, 0.0
    for le, n in delta:
        if n >= rank:
            if le == float("inf"):
                return prev_le * 1000
            frac = (rank - prev_n) / (n - prev_n) if n > prev_n else 1.0
            return (prev_le + (le - prev_le) * frac) * 1000
        prev_le, prev_n = le, n
    return float("nan")

summary = json.load(open(glob.glob(f"{tmp}/runs/*/summary.json")[0]))
row = next(r for r in summary["requests"] if r["name"] == route)
q = {0.5: 0, 0.95: 5, 0.99: 7}
t = open(f"{tmp}/time.txt").read()
rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
user_s = float(re.search(r"User time \(seconds\): ([\d.]+)", t).group(1))
sys_s = float(re.search(r"System time \(seconds\): ([\d.]+)", t).group(1))
wall = summary["settings"]["duration_s"]
under5 = next((n for le, n in delta if abs(le - 0.005) < 1e-9), float("nan"))
print(f"users {users}, {wall:.0f} s, {summary['aggregated']['count']} requests "
      f"({summary['aggregated']['failures']} failed)")
print(f"{route}: {row['count']} requests")
for name, i in q.items():
    print(f"  p{round(name*100)}: generator {row['percentiles_ms'][i]:.2f} ms, "
          f"server {server_q(name):.2f} ms")
print(f"  server: {under5:.0f} of {total:.0f} under 5 ms")
print(f"generator: max RSS {rss_kb/1024:.1f} MB ({rss_kb/users:.1f} KB per user), "
      f"CPU {(user_s+sys_s)/wall*100:.0f}% of one core")
print(f"verdict: {summary['verdict']}")
gen = summary.get("generator")
if gen:
    print(f"self-watch: {gen}")
PY
