#!/usr/bin/env bash
# Installs the Debian 12 packages capi-relay needs to build, test and demo; installs only what is
# missing, so a second run is quick. Usage: scripts/install-deps.sh [build|test|demo|bench]
set -euo pipefail
what=${1:-test}
pkgs=(build-essential cmake ninja-build ccache pkg-config libboost1.81-dev libssl-dev
      libsimdjson-dev libyaml-cpp-dev curl ca-certificates)
case "$what" in
  test) pkgs+=(libgtest-dev libgmock-dev libbenchmark-dev prometheus redis-server) ;;
  bench) pkgs+=(libbenchmark-dev wrk nginx-light) ;;  # bench/load.sh
  demo) ;;
  build) ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
