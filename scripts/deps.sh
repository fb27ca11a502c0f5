#!/usr/bin/env bash
# Installs the Debian packages Switchyard needs to build, run and test.
# Does nothing when every package is already installed, so `make run` and
# `make test` can call it every time.
set -euo pipefail

PKGS=(
  build-essential pkg-config
  libzmq3-dev libcjson-dev libssl-dev libcurl4-openssl-dev libsqlite3-dev
  libcmocka-dev
  python3 python3-pytest python3-zmq
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages: ${missing[*]}" >&2
  echo "deps.sh: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
