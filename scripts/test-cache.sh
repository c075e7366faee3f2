#!/usr/bin/env bash
# The http-cache-tests suite (cache-tests.fyi, from npm) against
# scratchnet's cache, nginx's proxy_cache and Varnish, in one run, each in
# front of the suite's own origin server (node, on the machine, port
# 8000):
#   scratchnet  a `cache` service in a lab, reached through the lab's TUN
#               uplink (the origin is the machine's end of it)
#   nginx       proxy_cache with proxy_cache_revalidate, as the suite's
#               own docker image configures it, on 127.0.0.1:8002
#   varnish     the default VCL (builtin.vcl), -b to the origin, on
#               127.0.0.1:8003
# Prints, per cache, the tests passed and failed, and the tests
# scratchnet fails; the raw results are left in target/cache-tests/.
# With test ids, runs those tests alone against scratchnet and shows
# their requests and answers (the suite's --id).
#
#   sudo scripts/test-cache.sh [TEST-ID...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh bench
cargo build --release --locked --quiet
bin=target/release/scratchnet
out=$PWD/target/cache-tests
suite=$out/node_modules/http-cache-tests
mkdir -p "$out"
if ! command -v npm >/dev/null; then
  apt-get install -y -q nodejs npm >/dev/null
fi
if [ ! -d "$suite" ]; then
  (cd "$out" && npm install --silent --no-audit --no-fund http-cache-tests@0.4.5)
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -e "$work/lab.toml" ] && "$bin" down "$work/lab.toml" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

# The suite's origin, on every address of the machine.
(cd "$suite" && npm_config_port=8000 npm_config_protocol=http npm_config_pidfile="$work/origin.pid" exec node server/server.mjs) > "$work/origin.log" 2>&1 &
pids+=($!)

cat > "$work/nginx.conf" <<EOF
daemon off;
user root;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events {}
http {
    access_log off;
    proxy_cache_path $work/nginx-cache levels=1:2 keys_zone=cache:8m max_size=1000m inactive=600m;
    proxy_temp_path $work/nginx-tmp;
    server {
        listen 127.0.0.1:8002;
        location / {
            proxy_pass http://127.0.0.1:8000;
            proxy_cache cache;
            proxy_cache_revalidate on;
        }
    }
}
EOF
nginx -c "$work/nginx.conf" &
pids+=($!)
varnishd -F -n "$work/varnish" -a 127.0.0.1:8003 -b 127.0.0.1:8000 -s malloc,256m > "$work/varnish.log" 2>&1 &
pids+=($!)

cat > "$work/lab.toml" <<'EOF'
name = "cache-tests"
[[switch]]
name = "ctedge"
subnet = "10.70.0.0/24"
[[router]]
name = "ct-gw"
interfaces = [
  { switch = "ctedge", address = "10.70.0.1/24" },
  { tun = "ct", address = "198.18.9.1/30", peer = "198.18.9.2", host_routes = ["10.70.0.0/24"] },
]
[[service]]
name = "ct-cache"
kind = "cache"
switch = "ctedge"
address = "10.70.0.10/24"
gateway = "10.70.0.1"
origin = "198.18.9.2:8000"
EOF
"$bin" up "$work/lab.toml" > "$work/up.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do grep -q ready "$work/up.log" && break; sleep 0.05; done
grep -q ready "$work/up.log" || { cat "$work/up.log"; exit 1; }
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:8000/ && break; sleep 0.1; done

if [ $# -gt 0 ]; then
  for id in "$@"; do
    (cd "$suite" && npm run --silent cli --base=http://10.70.0.10 --id="$id")
  done
  exit
fi

# Each cache in turn (the suite's tests wait on the clock: a few minutes
# each).
run() {
  local name=$1 base=$2
  echo "running the suite against $name ($base)..." >&2
  (cd "$suite" && npm run --silent cli --base="$base") > "$out/$name.json"
}
run scratchnet http://10.70.0.10
run nginx http://127.0.0.1:8002
run varnish http://127.0.0.1:8003

# Counted as cache-tests.fyi counts: `check` tests only inform; a test
# whose prerequisite (depends_on) this cache failed is not applicable to
# it.
node --input-type=module - "$out" "$suite" <<'EOF'
import fs from 'fs'
const [out, suite] = process.argv.slice(2)
const { default: tests } = await import(`${suite}/tests/index.mjs`)
const { default: surrogate } = await import(`${suite}/tests/surrogate-control.mjs`)
const info = {}
for (const s of [...tests, surrogate]) for (const t of s.tests) info[t.id] = { kind: t.kind || 'required', deps: t.depends_on || [] }
const names = ['scratchnet', 'nginx', 'varnish']
const results = Object.fromEntries(names.map(n => [n, JSON.parse(fs.readFileSync(`${out}/${n}.json`))]))
const passed = (n, id) => results[n][id] === true
const applies = (n, id, seen = new Set()) => info[id].deps.every(d => !(d in info) || seen.has(d) || (passed(n, d) && applies(n, d, new Set([...seen, id]))))
console.log('cache        required (pass/fail)   optimal (pass/fail)   not applicable')
for (const n of names) {
  const ids = Object.keys(info).filter(id => id in results[n] && info[id].kind !== 'check')
  const count = kind => {
    const of = ids.filter(id => info[id].kind === kind && applies(n, id))
    return `${String(of.filter(id => passed(n, id)).length).padStart(4)} / ${String(of.filter(id => !passed(n, id)).length).padEnd(4)}`
  }
  const na = ids.filter(id => !applies(n, id)).length
  console.log(`${n.padEnd(12)} ${count('required')}            ${count('optimal')}           ${na}`)
}
console.log('\nscratchnet fails:')
for (const id of Object.keys(info)) {
  if (!(id in results.scratchnet) || passed('scratchnet', id) || info[id].kind === 'check' || !applies('scratchnet', id)) continue
  const r = results.scratchnet[id]
  console.log(`  ${id} (${info[id].kind}): ${Array.isArray(r) ? r[1] : r}`)
}
EOF
