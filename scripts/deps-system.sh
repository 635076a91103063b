#!/usr/bin/env bash
# Installs the system programs the tests need when they are missing:
# redis-server (the Redis adapter's tests start their own instances). On a
# machine without apt-get or without root, it says what to install instead.
set -euo pipefail
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "installing ${missing[*]} for the tests"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
	echo "missing: ${missing[*]} (e.g. sudo apt-get install -y ${missing[*]})" >&2
	exit 1
fi
