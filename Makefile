# Operate Realtime — developer commands. `make test` is what CI runs.

GO        ?= go
NPM       ?= npm
NODE_DEPS := tests/node/node_modules/.package-lock.json
JS_DEPS   := clients/js/node_modules/.package-lock.json

.PHONY: all run test test-js vet deps generate generate-check console bench bench-core bench-redis bench-streams bench-full bench-micro fuzz conformance clean soak soak-smoke

all: test

## run: start the server on its embedded defaults (development mode, :8080)
run:
	$(GO) run ./cmd/realtime

## deps: install what the tests need (redis-server when missing, the Node packages
## of the real socket.io-client and Node servers); chromium: scripts/test-js.sh
deps: $(NODE_DEPS)
	scripts/deps-system.sh

$(NODE_DEPS): tests/node/package-lock.json tests/node/package.json
	@command -v node >/dev/null || { echo "node not found: install Node.js 20 (https://nodejs.org or apt-get install nodejs)"; exit 1; }
	$(NPM) ci --prefix tests/node --no-audit --no-fund
	@touch $@

## test: the whole test suite (vet, generated code, race detector, the TypeScript
## client against a real gateway, the console in headless Chromium)
test: deps vet
	$(GO) test -race -count=1 -timeout 20m ./...
	scripts/test-js.sh

## test-js: only the client and console tests (installs chromium and npm packages when missing)
test-js:
	scripts/test-js.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

## generate: regenerate code from the event catalog
generate:
	$(GO) generate ./gateway/events

## console: rebuild the development console embedded in the binary (commit gateway/console/)
console: $(JS_DEPS)
	$(NPM) run --prefix clients/js console

$(JS_DEPS): clients/js/package-lock.json clients/js/package.json
	$(NPM) ci --prefix clients/js --no-audit --no-fund
	@touch $@

generate-check:
	$(GO) test -count=1 -run 'TestGenerated' ./gateway/events/internal/gen

## bench: the quick benchmarks (about 15 minutes): the core's hot paths and the subscription filters' share of a fan-out, cross-node delivery over
## Redis, then our server beside Node's socket.io 4.8 and Centrifugo v6.9.1 (installed from the Go module proxy
## into artifacts/tools/ when missing; docs/benchmarks.md).
## BENCH_FULL=1 make bench (or make bench-full) runs the full comparison (~60-85 minutes).
## bench-streams (part of bench): the Redis Streams adapter beside Node's @socket.io/redis-streams-adapter, two nodes each:
## history's cost per event (vs the classic adapter), fan-out, and a recovery storm after a node restart (BENCH_STREAMS_CLIENTS, default 2000;
## 4.5 minutes with 200 clients on the 2-core box, the 2,000-client default not timed yet).
bench: bench-core bench-redis bench-streams
	scripts/bench.sh $(if $(BENCH_FULL),full,quick)

bench-streams:
	scripts/bench.sh quick --scenarios streams --peers node --clients $(or $(BENCH_STREAMS_CLIENTS),2000)

bench-core:
	$(GO) test -run '^$$' -bench Idle -benchtime 1x ./internal/corebench
	$(GO) test -run '^$$' -bench 'Broadcast|Burst' ./internal/corebench
	$(GO) test -run '^$$' -bench Connect -benchtime 1x ./internal/corebench
	$(GO) test -run '^$$' -bench DeliveryFilter -count 5 ./gateway

bench-redis: deps
	$(GO) test -run '^$$' -bench 'CrossNode/(go-classic|go-sharded|go-streams|node-classic|node-streams)/fanout=1000$$' -benchtime 2000x ./socketio/redisadapter

bench-full:
	scripts/bench.sh full

bench-micro:
	scripts/bench.sh micro

## soak: real users for SOAK_DURATION (default 10m): the real binary, a few thousand real
## socket.io-client sockets in a browser's mix of transports, faults every minute, a restart;
## fails on any unexplained disconnect, lost/duplicated/reordered event or resource growth.
## SOAK_CLIENTS, SOAK_ORGS, SOAK_MIX, SOAK_FAULT_EVERY... (cmd/realtime-soak); report in docs/
soak: deps
	$(GO) run ./cmd/realtime-soak

## soak-smoke: the soak in about a minute (200 clients, a cut, the restart, a stall; short heartbeats);
## not part of `make test`: on a loaded 2-core machine its clients' timing is not reliable enough
soak-smoke: deps
	SOAK_DURATION=45s SOAK_QUIET=20s SOAK_CLIENTS=200 SOAK_ORGS=10 SOAK_FAULT_EVERY=8s \
	SOAK_PING_INTERVAL=5s SOAK_PING_TIMEOUT=5s SOAK_TOKEN_TTL=30s SOAK_MEAN_GAP=3s \
	SOAK_OUT=$${SOAK_OUT:-$$(mktemp -d)} $(GO) run ./cmd/realtime-soak

## fuzz: run every fuzz target briefly (FUZZTIME=30s each by default); a failing
## input is written to the package's testdata/fuzz and kept there as a regression case
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodePayload$$' -fuzztime $(FUZZTIME) ./protocol/eio
	$(GO) test -run '^$$' -fuzz '^FuzzWebSocketFrames$$' -fuzztime $(FUZZTIME) ./engineio
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./protocol/sio
	$(GO) test -run '^$$' -fuzz '^FuzzJSONScanners$$' -fuzztime $(FUZZTIME) ./protocol/sio
	$(GO) test -run '^$$' -fuzz '^FuzzTranscode$$' -fuzztime $(FUZZTIME) ./socketio/internal/rediswire
	$(GO) test -run '^$$' -fuzz '^FuzzStreamData$$' -fuzztime $(FUZZTIME) ./socketio/internal/rediswire
	$(GO) test -run '^$$' -fuzz '^FuzzSession$$' -fuzztime $(FUZZTIME) ./socketio/internal/rediswire
	$(GO) test -run '^$$' -fuzz '^FuzzStreamID$$' -fuzztime $(FUZZTIME) ./socketio/internal/rediswire
	$(GO) test -run '^$$' -fuzz '^FuzzValidate$$' -fuzztime $(FUZZTIME) ./gateway/events

## conformance: run the official suites against examples/conformance
## (SUITES=<dir holding engine.io-protocol/ and socket.io-protocol/ checkouts>)
conformance:
	scripts/conformance.sh $(SUITES)

clean:
	rm -rf tests/node/node_modules clients/js/node_modules clients/js/dist bench/node/node_modules bin artifacts
