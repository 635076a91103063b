#!/usr/bin/env bash
# Benchmark harness: our server (the real `realtime` binary) beside Node's socket.io 4.8 (bench/node) and
# Centrifugo v6.9.1, same run, same machine, one server at a time, with ours' ratio to each. See docs/benchmarks.md.
#
#   scripts/bench.sh [quick|full|micro] [realtime-bench flags...]
#
#   quick  (default; full when BENCH_FULL is set) every scenario at reduced size, one repetition:
#          about 9 minutes on a 2-core box (six fan-out sessions idle 35 s each: three servers)
#   full   10k and 19k idle connections, finer ramps, 3 repetitions (medians), Redis cluster scenario: ~60-85 min
#   micro  the Go micro-benchmarks of the hot paths (codec, packet building, write path; seconds)
#
# Results go to artifacts/bench/<time>-<mode>/ (report.md, results.json, server logs, profiles with --pprof).
# Every process started is killed by its PID when the run ends, however it ends.
# A part of the clients connect as browsers do (long-polling, then the upgrade to WebSocket: --upgrade-percent,
# default 25), and every fan-out session idles past every server timeout before publishing: a run that loses
# events or connections where none may be lost says so in its report and exits with status 4.
# REALTIME_BIN=/path/to/realtime measures that binary instead of building ./cmd/realtime (an older build, say).
# Centrifugo is installed from the Go module proxy into artifacts/tools/centrifugo-v6.9.1/ (gitignored) when
# missing (a few minutes the first time: it is built from source); CENTRIFUGO_BIN=/path/to/centrifugo uses
# another build; --peers node leaves Centrifugo out.
# Measure on a quiet machine: the load average should be below ~1 (the script waits up to BENCH_WAIT_LOAD
# seconds, default 0, for it).
set -euo pipefail
cd "$(dirname "$0")/.."

default_mode=quick
[ -n "${BENCH_FULL:-}" ] && default_mode=full
mode=${1:-$default_mode}
[ $# -gt 0 ] && shift

GO=${GO:-go}

if [ "$mode" = micro ]; then
  exec "$GO" test -run '^$' -bench . -benchmem -benchtime "${BENCHTIME:-1s}" \
    ./protocol/eio ./protocol/sio ./socketio ./engineio ./gateway/auth
fi

case "$mode" in
  quick) full=() ;;
  full) full=(--full) ;;
  *) echo "usage: scripts/bench.sh [quick|full|micro] [flags...]" >&2; exit 2 ;;
esac

command -v node >/dev/null || { echo "node not found: install Node.js 20" >&2; exit 1; }
if [ ! -f bench/node/node_modules/.package-lock.json ] || [ bench/node/package-lock.json -nt bench/node/node_modules/.package-lock.json ]; then
  npm ci --prefix bench/node --no-audit --no-fund
fi

# Centrifugo, unless the peers or servers chosen leave it out.
want_centrifugo=1
prev=
for a in "$@"; do
  case "$prev" in --peers|--servers) case "$a" in *centrifugo*) want_centrifugo=1 ;; *) want_centrifugo=0 ;; esac ;; esac
  case "$a" in
    --peers=*centrifugo*|--servers=*centrifugo*) want_centrifugo=1 ;;
    --peers=*|--servers=*) want_centrifugo=0 ;;
  esac
  prev=$a
done
centrifugo_version=v6.9.1
centrifugo=${CENTRIFUGO_BIN:-}
if [ "$want_centrifugo" = 1 ]; then
  if [ -z "$centrifugo" ]; then
    centrifugo_dir=$PWD/artifacts/tools/centrifugo-$centrifugo_version
    centrifugo=$centrifugo_dir/centrifugo
    if [ ! -x "$centrifugo" ]; then
      echo "bench: installing Centrifugo $centrifugo_version into $centrifugo_dir (go install from the module proxy; minutes the first time)" >&2
      mkdir -p "$centrifugo_dir"
      GOBIN=$centrifugo_dir "$GO" install "github.com/centrifugal/centrifugo/v6@$centrifugo_version"
    fi
  fi
  [ -x "$centrifugo" ] || { echo "bench: $centrifugo is not an executable" >&2; exit 2; }
  # go install leaves `centrifugo version` at v0.0.0 (releases set it with -ldflags): the module version is in
  # the binary's build information.
  "$GO" version -m "$centrifugo" | grep -Eq "^[[:space:]]*mod[[:space:]]+github.com/centrifugal/centrifugo/v6[[:space:]]+$centrifugo_version([[:space:]]|\$)" ||
    echo "bench: warning: $centrifugo is not a build of Centrifugo $centrifugo_version" >&2
  centrifugo_flag=(--centrifugo "$centrifugo")
else
  centrifugo_flag=()
fi

wait_load=${BENCH_WAIT_LOAD:-0}
while :; do
  load=$(cut -d' ' -f1 /proc/loadavg)
  if awk -v l="$load" 'BEGIN { exit !(l < 1) }'; then break; fi
  if [ "$wait_load" -le 0 ]; then
    echo "bench: load average is $load (>= 1): figures will be noisy; set BENCH_WAIT_LOAD=600 to wait for a quiet machine" >&2
    break
  fi
  sleep 10
  wait_load=$((wait_load - 10))
done

out=${BENCH_OUT:-artifacts/bench/$(date +%Y%m%d-%H%M%S)-$mode}
mkdir -p "$out"
realtime=${REALTIME_BIN:-}
if [ -z "$realtime" ]; then
  realtime=$out/realtime
  "$GO" build -o "$realtime" ./cmd/realtime
fi
[ -x "$realtime" ] || { echo "bench: REALTIME_BIN=$realtime is not an executable" >&2; exit 2; }
"$GO" build -o "$out/realtime-bench" ./cmd/realtime-bench
exec "$out/realtime-bench" run ${full[@]+"${full[@]}"} ${centrifugo_flag[@]+"${centrifugo_flag[@]}"} --realtime "$realtime" --out "$out" "$@"
