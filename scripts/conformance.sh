#!/usr/bin/env bash
# Runs the official Engine.IO and Socket.IO conformance suites against
# examples/conformance, RUNS times each (default 5).
#
#   scripts/conformance.sh <dir>
#
# <dir> holds checkouts of socketio/engine.io-protocol and
# socketio/socket.io-protocol (their test-suite/ folders are used; run
# `npm ci` in each). They are not vendored here: see docs/conformance.md.
set -euo pipefail
dir=${1:?usage: scripts/conformance.sh <dir with engine.io-protocol/ and socket.io-protocol/>}
runs=${RUNS:-5}
cd "$(dirname "$0")/.."
go build -o bin/conformance ./examples/conformance
bin/conformance -addr :3000 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:3000/engine.io/?EIO=4&transport=polling" >/dev/null && break
  sleep 0.1
done
status=0
for suite in engine.io-protocol socket.io-protocol; do
  for i in $(seq "$runs"); do
    printf '%s run %d: ' "$suite" "$i"
    if out=$(cd "$dir/$suite/test-suite" && npx mocha test-suite.js 2>&1); then
      grep -E 'passing' <<<"$out" | tr -s ' '
    else
      status=1
      grep -E 'passing|failing|[0-9]+\) ' <<<"$out" | head -20
    fi
  done
done
exit $status
