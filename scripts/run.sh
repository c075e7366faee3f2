#!/usr/bin/env bash
# Builds scratchnet in release mode and runs a lab in the foreground:
# the built-in reference lab, or the topology file given. Ctrl-C stops it
# and removes everything it created.
#   sudo scripts/run.sh [FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked --quiet
exec target/release/scratchnet up "$@"
