#!/usr/bin/env bash
# Installs the Debian packages Switchyard needs to build, run and test.
# Does nothing when every package is already installed, so `make run` and
# `make test` can call it every time.
set -euo pipefail

PKGS=(
  build-essential pkg-config
  libzmq3-dev libcjson-dev libssl-dev libcurl4-openssl-dev libsqlite3-dev
  libmicrohttpd-dev librabbitmq-dev
  libcmocka-dev valgrind
  python3 python3-pytest python3-zmq
  rabbitmq-server nginx-light wrk
)
# Node.js runs the official interop peers (standardwebhooks, an SQS
# emulator); the machine image may already ship its own node and npm.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

node_deps() {
  # Test peers from the npm registry, pinned by tests/node/package-lock.json.
  local dir=tests/node
  [ -f "$dir/package.json" ] || return 0
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.stamp" ]; then
    echo "deps.sh: installing npm packages in $dir" >&2
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) && touch "$dir/node_modules/.stamp"
  fi
}
cd "$(dirname "$0")/.."

if [ ${#missing[@]} -eq 0 ]; then
  node_deps
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages: ${missing[*]}" >&2
  echo "deps.sh: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
node_deps
