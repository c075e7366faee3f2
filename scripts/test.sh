#!/usr/bin/env bash
# Runs every test: unit and simulator tests (no root needed), then the
# real-namespace tests, which need root and run only as root.
#   sudo scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test

echo "== unit and simulator tests"
cargo test --workspace --locked --quiet --lib --bins --tests

# Every fuzz target under libFuzzer for a few seconds (the stable tests
# above ran them over their corpus and seeded mutations already).
scripts/fuzz.sh

if [ "$(id -u)" -eq 0 ]; then
  echo "== real-namespace tests (root)"
  # Each test's guard removes its lab even when the test fails; this
  # catches what a hard crash of the test binary could leave (test labs
  # only: a lab the user runs is left alone).
  trap 'for f in "${TMPDIR:-/tmp}"/scratchnet-tests/*.toml; do [ -e "$f" ] && target/debug/scratchnet down "$f" >/dev/null 2>&1; done; true' EXIT
  cargo test --locked --quiet -p namespaces -- --ignored
  cargo test --locked --quiet -p scratchnet --test netns --test routing --test ipv6 --test nat --test services --test hardening --test survival --test trace --test dns --test balancer --test impairment --test commands --test learners --test vxlan --test web --test cdn -- --ignored --test-threads 2
  # The compose tests, when Docker runs here or Debian's can be installed.
  # (apt-cache's answer is read whole first: `| grep -q` would close the
  # pipe early, and with pipefail the SIGPIPE would read as "none".)
  docker_candidate=$(apt-cache policy docker.io 2>/dev/null || true)
  if command -v dockerd >/dev/null 2>&1 || grep -q 'Candidate: [0-9]' <<<"$docker_candidate"; then
    echo "== compose integration tests (Docker)"
    scripts/test-docker.sh
  else
    echo "== compose integration tests skipped: no Docker engine to be had here"
  fi
else
  echo "== real-namespace tests skipped: they need root (sudo scripts/test.sh)"
fi
