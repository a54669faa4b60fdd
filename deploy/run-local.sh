#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run pipe2-auth for real on
# this machine, with its own redis-server and everything it needs kept under var/.
#
#   deploy/run-local.sh            (Ctrl-C stops pipe2-authd and its redis-server)
#
# Beside pipe2-authd it runs the example MCP server (examples/mcp-server, the official
# TypeScript SDK, no auth code) on http://127.0.0.1:3000/mcp, the default resource: it asks
# pipe2-authd's forward-auth listener (127.0.0.1:8081) about every request, as a gateway
# would, so that any MCP client pointed at that URL signs in and calls its tools.
#
# Environment: P2A_REDIS_PORT (default 6390), P2A_MCP_LISTEN (default 127.0.0.1:3000; empty:
# no example server), P2A_VAR_DIR (default var/) and every PIPE2_AUTH_* setting of
# pipe2-authd. Every address it prints and uses is the one in force: move a port through
# its setting and the printed commands follow.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
var="${P2A_VAR_DIR:-$root/var}"
redis_port="${P2A_REDIS_PORT:-6390}"
mcp_listen="${P2A_MCP_LISTEN-127.0.0.1:3000}"
rpc_listen="${PIPE2_AUTH_RPC_LISTEN:-127.0.0.1:50051}"
http_listen="${PIPE2_AUTH_HTTP_LISTEN:-127.0.0.1:8080}"
metrics_listen="${PIPE2_AUTH_METRICS_LISTEN:-127.0.0.1:9090}"
forward_auth_listen="${PIPE2_AUTH_FORWARD_AUTH_LISTEN-127.0.0.1:8081}"
issuer="${PIPE2_AUTH_ISSUER:-http://$http_listen}"
mcp_url="${PIPE2_AUTH_RESOURCE:-http://${mcp_listen:-127.0.0.1:3000}/mcp}"
export P2A_ADDR="$rpc_listen" # for scripts/p2a, here and in what is printed

"$root/scripts/install-deps.sh" --cli

# npm ci only when the installed modules are older than the lock file: a second run (or the
# test suite beside it) keeps the ones in use
if [ -n "$mcp_listen" ] && ! [ "$root/examples/mcp-server/node_modules/.package-lock.json" -nt \
  "$root/examples/mcp-server/package-lock.json" ]; then
  echo "==> npm ci (examples/mcp-server)"
  (cd "$root/examples/mcp-server" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

echo "==> building (release)"
cmake -S "$root" -B "$root/build/release" -DCMAKE_BUILD_TYPE=Release -DP2A_TESTS=OFF >/dev/null
cmake --build "$root/build/release" -j"$(nproc)" >/dev/null

mkdir -p "$var/redis" "$var/keys"
chmod 700 "$var" "$var/keys"

echo "==> starting redis-server on 127.0.0.1:$redis_port (data in var/redis, append-only, fsync always)"
if redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1; then
  echo "error: something already answers on 127.0.0.1:$redis_port; stop it or set P2A_REDIS_PORT" >&2
  exit 1
fi
# setsid: Ctrl-C reaches only this script, which stops both children in order
setsid redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$var/redis" --appendonly yes \
  --appendfsync always --save "" --daemonize no --logfile "$var/redis/redis.log" &
redis_pid=$!
authd_pid=""
mcp_pid=""
cleanup() {
  set +e
  trap - EXIT INT TERM
  if [ -n "$mcp_pid" ]; then
    kill -TERM "$mcp_pid" 2>/dev/null
    wait "$mcp_pid" 2>/dev/null
  fi
  if [ -n "$authd_pid" ]; then
    kill -TERM "$authd_pid" 2>/dev/null
    wait "$authd_pid" 2>/dev/null
  fi
  kill -TERM "$redis_pid" 2>/dev/null
  wait "$redis_pid" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for _ in $(seq 100); do
  redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1 && break
  kill -0 "$redis_pid" 2>/dev/null || { echo "error: redis-server did not start; see var/redis/redis.log" >&2; exit 1; }
  sleep 0.1
done

if ! ls "$var/keys"/*.pem >/dev/null 2>&1; then
  kid="key-$(date -u +%Y%m%d%H%M%S)"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$var/keys/$kid.pem" 2>/dev/null
  chmod 600 "$var/keys/$kid.pem"
  echo "==> generated signing key var/keys/$kid.pem"
fi

new_key() { printf 'p2a_%s_%s' "$1" "$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n')"; }
digest() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
first_user_password=""
if [ ! -f "$var/service-keys" ]; then
  first_user_password=$(openssl rand -base64 12 | tr '+/' '-_' | tr -d '=\n')
  admin=$(new_key admin)
  introspect=$(new_key introspect)
  umask 077
  {
    echo "# role  sha256(key)  label -- only digests are kept; the keys were printed once"
    echo "admin $(digest "$admin") dashboard"
    echo "introspect $(digest "$introspect") mcp-server"
  } >"$var/service-keys"
  cat <<MSG

==> first run: two service keys were made. They are shown now and never again
    (only their digests are kept, in var/service-keys). Copy them somewhere safe.

    admin key      (dashboards: issue, list, revoke):  $admin
    introspect key (MCP servers: introspect):          $introspect

    Try it from another terminal once pipe2-authd says "ready" (alice's user id is
    printed below, once her account is made; it is the sub of her PATs and OAuth tokens):
      export P2A_ADDR=$rpc_listen
      export P2A_ADMIN_KEY=$admin
      export P2A_INTROSPECT_KEY=$introspect
      scripts/p2a issue --user <alice's user id> --name "my laptop"   # the token, once
      scripts/p2a introspect <token>
      scripts/p2a list --user <alice's user id>
      scripts/p2a revoke <jti>
      scripts/p2a introspect <token>                         # now: REVOKED
    A dashboard with users of its own registers each first: scripts/p2a put-user <its id>.

    Connect an MCP client to the example MCP server, sign in through the browser as
      username: alice
      password: $first_user_password
    and call its tools (whoami, echo, add):
      npx @modelcontextprotocol/inspector        # Streamable HTTP, URL $mcp_url
      claude mcp add --transport http pipe2 $mcp_url
    or make a PAT on the account page, $issuer/account/ (sign in as alice),
    and put it in the client's headers instead of signing in:
      claude mcp add --transport http pipe2 $mcp_url \\
        --header "Authorization: Bearer <token from scripts/p2a issue>"
MSG
else
  echo "==> service keys: var/service-keys (printed on the first run; delete the file to make new ones)"
fi

export PIPE2_AUTH_KEYS_DIR="${PIPE2_AUTH_KEYS_DIR:-$var/keys}"
export PIPE2_AUTH_SERVICE_KEYS_FILE="${PIPE2_AUTH_SERVICE_KEYS_FILE:-$var/service-keys}"
export PIPE2_AUTH_REDIS_URL="${PIPE2_AUTH_REDIS_URL:-redis://127.0.0.1:$redis_port/0}"
export PIPE2_AUTH_RPC_LISTEN="$rpc_listen" PIPE2_AUTH_HTTP_LISTEN="$http_listen"
export PIPE2_AUTH_METRICS_LISTEN="$metrics_listen" PIPE2_AUTH_ISSUER="$issuer"
export PIPE2_AUTH_RESOURCE="$mcp_url"
export PIPE2_AUTH_FORWARD_AUTH_LISTEN="$forward_auth_listen"
export PIPE2_AUTH_ACCOUNT_PAGES="${PIPE2_AUTH_ACCOUNT_PAGES:-on}"
echo "==> starting pipe2-authd: gRPC on $rpc_listen, OAuth and sign-in on $issuer, forward-auth on ${forward_auth_listen:-(none)}, metrics on http://$metrics_listen/metrics (Ctrl-C to stop)"
setsid "$root/build/release/pipe2-authd" &
authd_pid=$!
if [ -n "$mcp_listen" ] && [ -n "$forward_auth_listen" ]; then
  echo "==> starting the example MCP server on http://$mcp_listen/mcp (no auth code: it asks forward-auth)"
  MCP_LISTEN="$mcp_listen" P2A_FORWARD_AUTH="http://$forward_auth_listen/forward-auth" \
    P2A_FACADE="http://$http_listen" \
    setsid node "$root/examples/mcp-server/server.mjs" &
  mcp_pid=$!
fi
if [ -n "$first_user_password" ]; then
  # the first person who can sign in: created over the admin RPC once the service is up
  for _ in $(seq 1 100); do
    P2A_ADMIN_KEY=$admin "$root/scripts/p2a" health 2>/dev/null | grep -q '^SERVING' && break
    sleep 0.1
  done
  alice_id=$(P2A_ADMIN_KEY=$admin P2A_PASSWORD=$first_user_password "$root/scripts/p2a" \
    create-user alice | sed -n 's/^user_id //p')
  [ -n "$alice_id" ] && echo "==> created the first user \"alice\" (password printed above), user id $alice_id"
  [ "$PIPE2_AUTH_ACCOUNT_PAGES" = on ] && echo "==> alice's tokens and connected clients: $issuer/account/"
fi
wait "$authd_pid"
status=$?
authd_pid=""
exit "$status"
