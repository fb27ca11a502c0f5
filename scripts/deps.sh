#!/usr/bin/env bash
# Installs the Debian packages Switchyard needs, by purpose:
#
#   scripts/deps.sh run           build, install and run the daemon (make run)
#   scripts/deps.sh deb           run's, plus debhelper            (make deb)
#   scripts/deps.sh test          deb's, plus what the tests use   (make test, make check)
#   scripts/deps.sh bench         test's, plus the benchmarks' peers (make bench)
#   scripts/deps.sh --list MODE   print MODE's packages, one a line, and install nothing
#
# Only missing packages are installed (apt-get update, then apt-get install
# -y); with every package there it does nothing, so make calls it every time.
# `test` also installs the npm packages pinned by tests/node/package-lock.json.
#
# Services: Debian starts rabbitmq-server (ports 5672, 25672, and epmd on
# 4369), postgresql (port 5432), nginx (port 80) and rsyslog (the system
# logger, /dev/log) when it installs them, and at every boot. The tests and
# benchmarks start their own instances on free loopback ports and their own
# folders, and need none of them. So when this script installs one of them,
# it keeps it from starting during the install (a policy-rc.d that forbids
# it, unless the system already has one, which is the administrator's), then
# stops it if it runs anyway and disables it at boot. A service that was installed before
# is the administrator's too and is left alone.
set -euo pipefail

usage() {
  echo "usage: scripts/deps.sh run|deb|test|bench   (or --list run|deb|test|bench)" >&2
  exit 2
}

list=0
if [ "${1:-}" = "--list" ]; then
  list=1
  shift
fi
[ $# -eq 1 ] || usage
mode=$1

# The daemon and its plugins: toolchain and libraries to build, and to run
# (Lua 5.4 runs the endpoints' transformations, docs/TRANSFORMS.md; libsystemd
# for sd_notify), and scdoc for the man pages make install puts in place.
# debian/control's Build-Depends are these and debhelper.
RUN_PKGS=(
  build-essential pkg-config
  libzmq3-dev libcjson-dev libssl-dev libcurl4-openssl-dev libsqlite3-dev libpq-dev
  libmicrohttpd-dev librabbitmq-dev liblua5.4-dev libsystemd-dev zlib1g-dev scdoc
)
# make deb: the Debian packages, built with debhelper (dpkg-dev comes with it).
DEB_PKGS=(debhelper)
# Unit tests (cmocka, valgrind), end-to-end tests (pytest, pyzmq, a real
# RabbitMQ, a real PostgreSQL, openssl for test certificates) and Node.js
# for the official interop peers (standardwebhooks, an SQS emulator, the
# OpenAPI validator @apidevtools/swagger-parser). The machine image may
# ship its own node and npm.
# The packaging tests: lintian on the .deb files, man -l on the man pages,
# systemd-analyze (verify, security) on the unit. The portal's tests drive
# Debian's chromium (headless) through chromium-driver with python3-selenium.
# gdb: a daemon that is not ready in time has its threads' stacks in the
# failure message (conftest.stall_report).
TEST_PKGS=(
  libcmocka-dev valgrind gdb
  python3 python3-pytest python3-zmq
  openssl rabbitmq-server postgresql
  lintian man-db systemd
  chromium chromium-driver python3-selenium
)
command -v node >/dev/null 2>&1 || TEST_PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || TEST_PKGS+=(npm)
# bench/bench_webhook.py measures against nginx with wrk; bench_throughput.py
# against rsyslog reading ZeroMQ (imczmq, in rsyslog-czmq).
BENCH_PKGS=(nginx-light wrk rsyslog rsyslog-czmq)

# Package -> the services it starts on install; see the top of this file.
declare -A SERVICES=([rabbitmq-server]="rabbitmq-server epmd" [nginx-light]="nginx"
                     [postgresql]="postgresql" [rsyslog]="rsyslog")

case "$mode" in
  run) PKGS=("${RUN_PKGS[@]}") ;;
  deb) PKGS=("${RUN_PKGS[@]}" "${DEB_PKGS[@]}") ;;
  test) PKGS=("${RUN_PKGS[@]}" "${DEB_PKGS[@]}" "${TEST_PKGS[@]}") ;;
  bench) PKGS=("${RUN_PKGS[@]}" "${DEB_PKGS[@]}" "${TEST_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
  *) usage ;;
esac

if [ $list -eq 1 ]; then
  printf '%s\n' "${PKGS[@]}"
  exit 0
fi

cd "$(dirname "$0")/.."

node_deps() {
  # Test peers from the npm registry, pinned by tests/node/package-lock.json.
  local dir=tests/node
  [ "$mode" = test ] || [ "$mode" = bench ] || return 0
  [ -f "$dir/package.json" ] || return 0
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.stamp" ]; then
    echo "deps.sh: installing npm packages in $dir" >&2
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) && touch "$dir/node_modules/.stamp"
  fi
}

# Stops and disables at boot the services of the packages just installed.
quiet_services() {
  local p svc
  for p in "$@"; do
    for svc in ${SERVICES[$p]:-}; do
      echo "deps.sh: $svc is for the tests' own instances: stopping it and disabling it at boot" >&2
      if [ -d /run/systemd/system ]; then
        systemctl disable --now "$svc.service" >/dev/null 2>&1 || true
        [ "$svc" != epmd ] || systemctl disable --now epmd.socket >/dev/null 2>&1 || true
      elif [ "$svc" = epmd ]; then
        # Without systemd, epmd is a plain daemon rabbitmq started.
        command -v epmd >/dev/null 2>&1 && epmd -kill >/dev/null 2>&1 || true
      else
        service "$svc" stop >/dev/null 2>&1 || true
        update-rc.d "$svc" disable >/dev/null 2>&1 || true
      fi
    done
  done
}

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  node_deps
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages: ${missing[*]}" >&2
  echo "deps.sh: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

services=()
for p in "${missing[@]}"; do
  [ -z "${SERVICES[$p]:-}" ] || services+=("$p")
done
policy=${POLICY_RC_D:-/usr/sbin/policy-rc.d} # where invoke-rc.d looks; tests point it elsewhere
if [ ${#services[@]} -gt 0 ] && [ ! -e $policy ]; then
  # Exit status 101: "action forbidden", so invoke-rc.d and deb-systemd-invoke
  # start nothing while apt-get runs. Removed however this script ends.
  trap 'rm -f $policy' EXIT
  printf '#!/bin/sh\nexit 101\n' > $policy
  chmod 0755 $policy
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
[ ${#services[@]} -eq 0 ] || quiet_services "${services[@]}"
node_deps
