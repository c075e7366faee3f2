#!/usr/bin/env bash
# Builds scratchnet and runs a lab in the foreground: the built-in
# reference lab, or the topology file given. Ctrl-C stops it and removes
# everything it created.
#   sudo scripts/run.sh [FILE]
# Under sudo, cargo runs as the user who invoked it (with their Rust
# install, their cargo cache, and a target/ they own); only `up` runs as
# root. Run without sudo, it builds and then asks sudo for `up`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh lab

# The invoking user's cargo: sudo resets PATH, hiding ~/.cargo/bin.
build=(cargo build --release --locked -p scratchnet)
if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
  home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
  cargo=$(command -v cargo || echo "$home/.cargo/bin/cargo")
  echo "building scratchnet as $SUDO_USER (the first build takes a few minutes)..."
  sudo -u "$SUDO_USER" -H env PATH="$home/.cargo/bin:$PATH" "$cargo" "${build[@]:1}"
else
  echo "building scratchnet (the first build takes a few minutes)..."
  "${build[@]}"
fi

bin=target/release/scratchnet
echo "built $PWD/$bin"
command -v scratchnet >/dev/null 2>&1 ||
  echo "to type \`scratchnet\` anywhere: sudo install -m 755 $PWD/$bin /usr/local/bin/"
echo "starting the lab; it runs in this terminal until Ctrl-C (use another terminal for the hosts)"
if [ "$(id -u)" -eq 0 ]; then
  exec "$bin" up "$@"
fi
exec sudo "$bin" up "$@"
