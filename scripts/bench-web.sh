#!/usr/bin/env bash
# What the web page costs (docs/web.md): N namespace hosts on one switch
# (default 1000), the lab started with `up --web`. Prints the lab
# process's CPU over SECS seconds (default 20) with no page open, then
# with one page's live feed open (/api/events, what an open page reads
# each second), and the difference as a share of one core (the goal:
# under 2%); how long the page takes in Debian's chromium (headless,
# through chromedriver) from the address to drawn and answering clicks
# (the goal: under 2 s); how long /api/lab (what the page draws from)
# takes and how big it is; and one /metrics scrape.
#
#   sudo scripts/bench-web.sh
#   sudo N=5000 SECS=30 scripts/bench-web.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
n=${N:-1000}
window=${SECS:-20}
port=18088
feed_pid=""
stop_feed() { if [ -n "$feed_pid" ]; then kill "$feed_pid" 2>/dev/null || true; fi; }
trap 'stop_feed; cleanup' EXIT

# Percent of one core the lab process used over $window seconds.
cpu() {
  local a b
  a=$(awk '{print $14 + $15}' "/proc/$lab_pid/stat"); sleep "$window"; b=$(awk '{print $14 + $15}' "/proc/$lab_pid/stat")
  python3 -c 'import os,sys; print("%.2f" % ((int(sys.argv[2]) - int(sys.argv[1])) / os.sysconf("SC_CLK_TCK") / float(sys.argv[3]) * 100))' "$a" "$b" "$window"
}

{
  echo 'name = "bench-web"'
  echo '[[switch]]'; echo 'name = "scale"'; echo 'subnet = "10.90.0.0/16"'
  for i in $(seq 0 $((n - 1))); do
    printf '[[host]]\nname = "w%d"\nswitch = "scale"\naddress = "10.90.%d.%d/16"\n' "$i" $((i / 250)) $((i % 250 + 1))
  done
} > "$work/lab.toml"
"$bin" up "$work/lab.toml" --web "127.0.0.1:$port" > "$work/up.log" 2>&1 &
lab_pid=$!
until grep -q ready "$work/up.log"; do
  kill -0 "$lab_pid" 2>/dev/null || { cat "$work/up.log"; exit 1; }
  sleep 0.05
done
sleep 5 # the hosts' first chatter (DAD, router solicitations) over
base="http://127.0.0.1:$port"
idle=$(cpu)
curl -sN "$base/api/events" > "$work/events" &
feed_pid=$!
open=$(cpu)
stop_feed
events=$(grep -c '^data:' "$work/events" || true)
event_bytes=$(awk '/^data:/ {s += length($0)} END {printf "%.0f", s / (NR ? NR / 2 : 1)}' "$work/events")
interactive=$(python3 scripts/page-ready.py "$base/")
graph=$(curl -s -o "$work/lab.json" -w '%{time_total} %{size_download}' "$base/api/lab")
scrape=$(curl -s -o /dev/null -w '%{time_total} %{size_download}' "$base/metrics")
kill -INT "$lab_pid"; wait "$lab_pid" 2>/dev/null || true; lab_pid=""

echo "web page cost, $n namespace hosts on one switch, ${window} s windows"
printf '  lab CPU, no page open:        %6s %% of a core\n' "$idle"
printf '  lab CPU, one page open:       %6s %% of a core (%s updates, about %s bytes each)\n' "$open" "$events" "$event_bytes"
python3 -c 'import sys; print("  the page'"'"'s share:             %6.2f %% of a core (goal: under 2)" % (float(sys.argv[2]) - float(sys.argv[1])))' "$idle" "$open"
printf '  page drawn and interactive:   %6s s in chromium (goal: under 2)\n' "$interactive"
read -r t s <<<"$graph"
printf '  GET /api/lab:                 %6.3f s, %s bytes\n' "$t" "$s"
read -r t s <<<"$scrape"
printf '  GET /metrics:                 %6.3f s, %s bytes\n' "$t" "$s"
