#!/usr/bin/env bash
# Makes the files deploy/kubernetes/kustomization.yaml turns into Secrets, under
# deploy/kubernetes/secrets/ (git-ignored): a signing key, an admin and an introspect service
# key (printed once; only digests are kept), and the Redis URL.
#
#   deploy/kubernetes/make-secrets.sh [redis-url]     default redis://redis:6379/0
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="${P2A_SECRETS_DIR:-$here/secrets}"
mkdir -p "$out/keys"
chmod 700 "$out"
umask 077
if [ ! -f "$out/keys/signing-key.pem" ]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/keys/signing-key.pem" 2>/dev/null
fi
if [ ! -f "$out/service-keys" ]; then
  new_key() { printf 'p2a_%s_%s' "$1" "$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n')"; }
  digest() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
  admin=$(new_key admin)
  introspect=$(new_key introspect)
  {
    echo "admin $(digest "$admin") dashboard"
    echo "introspect $(digest "$introspect") mcp-servers"
  } >"$out/service-keys"
  echo "admin key (shown once):      $admin"
  echo "introspect key (shown once): $introspect"
fi
printf 'PIPE2_AUTH_REDIS_URL=%s\n' "${1:-redis://redis:6379/0}" >"$out/redis.env"
echo "secrets in $out"
