#!/usr/bin/env bash
# Runs the TypeScript client's tests (clients/js): unit tests, tests against a
# real gateway process (built from ./cmd/realtime by the tests), the console
# build check, and the browser tests in headless Chromium (the development
# console; a page that stays connected through idle stretches, about 50 s).
#
# Installs what they need first, so that it works on a fresh machine and in CI:
#   - Debian's chromium, when /usr/bin/chromium is missing (as root, with
#     apt-get; never a browser download);
#   - the npm packages, with `npm ci`, when node_modules is older than the lock.
#
# Environment: CHROMIUM_PATH (default /usr/bin/chromium); REALTIME_SKIP_BROWSER=1
# skips the browser tests; ARTIFACTS_DIR (default artifacts/) receives console.png.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v node >/dev/null || { echo "node not found: install Node.js 20.19 or later" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm not found: install npm" >&2; exit 1; }

chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ "${REALTIME_SKIP_BROWSER:-}" != 1 ] && [ ! -x "$chromium" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "installing Debian's chromium for the browser tests"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
	else
		echo "$chromium not found: run 'sudo apt-get install -y chromium', set CHROMIUM_PATH," >&2
		echo "or set REALTIME_SKIP_BROWSER=1 to skip the browser tests" >&2
		exit 1
	fi
fi

stamp=clients/js/node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ clients/js/package-lock.json -nt "$stamp" ] || [ clients/js/package.json -nt "$stamp" ]; then
	npm ci --prefix clients/js --no-audit --no-fund
	touch "$stamp"
fi

# One gateway binary for every test project (each would build its own).
bindir="$(mktemp -d)"
trap 'rm -rf "$bindir"' EXIT
go build -o "$bindir/realtime" ./cmd/realtime
export REALTIME_BINARY="$bindir/realtime"

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 # playwright-core never downloads; belt and braces
npm test --prefix clients/js
