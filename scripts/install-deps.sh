#!/usr/bin/env bash
# Installs the Debian 12 packages pipe2-auth needs, only those missing.
#   scripts/install-deps.sh          what building and running need
#   scripts/install-deps.sh --cli    plus what scripts/p2a (the command-line client) needs
#   scripts/install-deps.sh --test   plus what the tests need (clients, cmocka, ...)
#   scripts/install-deps.sh --bench  plus what tests/bench needs (h2load, nghttpd, perf)
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config protobuf-c-compiler libprotobuf-c-dev
  libnghttp2-dev libssl-dev libjwt-dev libjansson-dev libhiredis-dev libevent-dev
  libcurl4-openssl-dev
  redis-server openssl)
cli_pkgs=(python3 python3-grpcio python3-protobuf protobuf-compiler nodejs npm)
test_pkgs=(libcmocka-dev redis-sentinel nginx python3-h2 python3-cryptography python3-yaml nghttp2-client nodejs npm procps
  buildah podman debootstrap runc clang-tidy cppcheck clang libclang-rt-14-dev chromium)
bench_pkgs=(nghttp2-server curl util-linux)

pkgs=("${build_pkgs[@]}")
case "${1:-}" in
  --cli) pkgs+=("${cli_pkgs[@]}") ;;
  --test) pkgs+=("${cli_pkgs[@]}" "${test_pkgs[@]}") ;;
  --bench) pkgs+=("${cli_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# a node that did not come from Debian (nvm, a tarball) is as good as Debian's
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs/}")
  missing=("${missing[@]/npm/}")
fi
todo=()
for p in "${missing[@]}"; do [ -n "$p" ] && todo+=("$p"); done
[ ${#todo[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${todo[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${todo[@]}" >/dev/null
# Debian starts nginx on port 80 when it is installed; the tests start their own, on loopback
if [[ " ${todo[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null; then
  $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
fi
