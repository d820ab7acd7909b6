# The everyday loops. `make test` is what CI runs.
SHELL := /bin/bash
GO ?= go
# Debian packages the tests drive for real: Redis (store), GnuPG and Sequoia
# (OpenPGP interop), isync/mbsync and swaks (real mail clients).
TEST_TOOLS := redis-server:redis-server redis-cli:redis-tools gpg:gnupg sq:sq mbsync:isync swaks:swaks python3:python3
FUZZTIME ?= 20s

.PHONY: test deps lint vet bench fuzz build demo

build:
	$(GO) build ./...

deps:
	@missing=""; for pair in $(TEST_TOOLS); do \
		bin=$${pair%%:*}; pkg=$${pair##*:}; \
		command -v $$bin >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

vet:
	$(GO) vet ./...

test: deps vet
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || { echo "gofmt: files above need formatting"; exit 1; }
	$(GO) test -race -timeout 15m ./internal/store/... ./internal/channel/... ./bridge/...
	$(GO) test -timeout 15m ./...

lint: vet
	@test -z "$$(gofmt -l . | tee /dev/stderr)"
	$(GO) tool staticcheck ./...

bench:
	$(GO) run ./bench -md BENCHMARKS.md $(BENCH_FLAGS)

# Each fuzz target for a bounded time.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list 'Fuzz.*' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run XXX -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

demo:
	$(GO) run ./cmd/smessenger demo
