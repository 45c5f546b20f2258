#!/usr/bin/env bash
# Generated clients against a real server: builds the server, starts it on a free
# loopback port with SQLite in a temporary directory, and runs the README walk-through
# through each client generated from openapi/openapi.json (see the folders here).
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
tmp=$(mktemp -d)
server_pid=""
cleanup() {
	if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

(cd "$root" && go build -o "$tmp/server" ./cmd/server)
IRONFLOW_LISTEN_ADDR=127.0.0.1:0 IRONFLOW_LOG_FORMAT=json IRONFLOW_API_KEYS=ci-key \
	IRONFLOW_DATABASE_URL="sqlite://$tmp/ironflow.db" "$tmp/server" >"$tmp/server.log" 2>&1 &
server_pid=$!
addr=""
for _ in $(seq 1 100); do
	addr=$(sed -n 's/.*"msg":"listening".*"addr":"\([^"]*\)".*/\1/p' "$tmp/server.log" | head -n1)
	[ -n "$addr" ] && break
	sleep 0.1
done
if [ -z "$addr" ]; then
	cat "$tmp/server.log" >&2
	echo "the server did not start" >&2
	exit 1
fi
export IRONFLOW_URL="http://$addr" IRONFLOW_API_KEY=ci-key

(cd ts && npm ci --no-audit --no-fund && npm test)
