# A thin wrapper over what CI runs (.ci/run calls `make test`).
# Caddy's version comes from go.mod; nothing is pinned twice.

GO       ?= go
CADDY    := bin/caddy
MODULE   := github.com/nellis-edge/gateway
CADDY_V  := $(shell $(GO) list -m -f '{{.Version}}' github.com/caddyserver/caddy/v2)
XCADDY   := $(GO) run github.com/caddyserver/xcaddy/cmd/xcaddy@v0.4.5
# Caddyfile.demo-cluster is one node's; demo/cluster.sh sets these per node.
DEMO_CLUSTER_ENV := DEMO_DIR=bin NODE=a PORT=8081 ADMIN_PORT=2021 NATS_PORT=4222
# Caddyfile.example reads its secrets from the environment; validation only
# needs them to be set.
EXAMPLE_ENV := NELLIS_AUTH_TOKEN=validate-only NELLIS_COOKIE_KEY=0000000000000000000000000000000000000000000000000000000000000000

.PHONY: all build xcaddy xcaddy-windows test deps vet fmt-check unit portable cross caddyfiles demo demo-cluster nats fuzz bench clean

all: build

build:
	$(GO) build -o $(CADDY) ./cmd/caddy

# The plugin build users make: xcaddy with this checkout as the module.
# The explicit @v0.0.0 lets the module proxy skip the unpublished path.
xcaddy:
	$(XCADDY) build $(CADDY_V) --with $(MODULE)@v0.0.0=. --output bin/caddy-xcaddy
	bin/caddy-xcaddy list-modules | grep -E '^(nellis|http\.handlers\.nellis_)'

test: deps vet fmt-check cross unit portable caddyfiles xcaddy xcaddy-windows

# The platforms a Caddy plugin is built on besides Linux. `go vet` type-checks
# every package with its test files for the target, which `go build` alone
# would not; build also links nothing, so both are quick.
CROSS := windows/amd64 darwin/arm64 freebsd/amd64
cross:
	@for t in $(CROSS); do \
		echo "== $$t"; \
		GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build ./... || exit 1; \
		GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) vet ./... || exit 1; \
	done

# The portable fallbacks (no epoll parking, no inline write(2)) that the
# other platforms run, forced on Linux and put through the relay's tests.
portable:
	$(GO) test -race -count=1 -tags nellis_portable ./wsconn ./wsrelay

# One non-Linux plugin build through xcaddy, as a Windows user makes it
# (xcaddy's own cross build; `cross` already compiles ./cmd/caddy for every
# target, so one xcaddy target checks what xcaddy adds: its generated main
# and the module replacement).
# xcaddy itself is built for this machine first: `go run` would build it
# for GOOS too.
xcaddy-windows:
	GOBIN=$(CURDIR)/bin $(GO) install github.com/caddyserver/xcaddy/cmd/xcaddy@v0.4.5
	GOOS=windows GOARCH=amd64 bin/xcaddy build $(CADDY_V) --with $(MODULE)@v0.0.0=. --output bin/caddy-xcaddy.exe

# What the tests need beyond Go: Debian's Chromium for the browser tests.
deps:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium (Debian package) for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# CI shows only the end of what a run prints, and the Caddy logs of the tests
# that ran after a failure push the failure out of it. So the whole output is
# kept in $(UNIT_LOG), and a failed run ends with each failure's own lines.
UNIT_LOG := bin/unit.log
unit:
	@mkdir -p bin
	@echo '$(GO) test -race -count=1 ./...'
	@bash -o pipefail -c '$(GO) test -race -count=1 ./... 2>&1 | tee $(UNIT_LOG)' || { \
		echo "== what failed (the whole output is in $(UNIT_LOG))"; \
		grep -v '^{"level"' $(UNIT_LOG) | grep -A30 -E -e '--- FAIL|^panic:|DATA RACE|^FAIL' | head -400; \
		exit 1; }

caddyfiles: build
	$(EXAMPLE_ENV) $(CADDY) validate --config Caddyfile.example --adapter caddyfile
	$(CADDY) validate --config Caddyfile.demo --adapter caddyfile
	$(DEMO_CLUSTER_ENV) $(CADDY) validate --config Caddyfile.demo-cluster --adapter caddyfile
	DEMO_DIR=bin $(CADDY) validate --config Caddyfile.demo-sim --adapter caddyfile
	$(CADDY) fmt --diff Caddyfile.example
	$(CADDY) fmt --diff Caddyfile.demo
	$(CADDY) fmt --diff Caddyfile.demo-cluster
	$(CADDY) fmt --diff Caddyfile.demo-sim

# The demo: the simulator and the gateway in one process, on localhost.
demo: build
	@echo "open http://localhost:8080 (ctrl-c to stop)"
	$(CADDY) run --config Caddyfile.demo --adapter caddyfile

# nellis-nats: one NATS server with JetStream, for trying cluster mode.
nats:
	$(GO) build -o bin/nellis-nats ./cmd/nellis-nats

# The cluster demo: nellis-nats, the simulator and three gateways (nodes a,
# b and c on ports 8081-8083), each process on its own; demo/cluster.sh
# says how to kill a node, and ctrl-c stops them all.
demo-cluster: build nats
	@sh demo/cluster.sh

FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

clean:
	rm -rf bin

# The benchmark (BENCHMARKS.md): the gateway, the simulator and the load
# generators in their own processes. Never part of `make test`. Takes about
# 20 minutes; BENCH_QUICK=1 is a 5-6 minute smoke run that writes nothing,
# BENCH_HOLD=<duration> shortens the 10-minute idle-connection hold.
bench: build nats
	$(GO) build -o bin/nellis-loadgen ./cmd/nellis-loadgen
	$(GO) build -o bin/nellis-floor ./cmd/nellis-floor
	$(GO) run ./bench -caddy $(CADDY) -loadgen bin/nellis-loadgen -floor bin/nellis-floor
