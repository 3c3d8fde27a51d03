# macronode — build, run, test. `make` alone lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
BIN       := bin
PKG       := github.com/macronode/macronode
VERSION   ?= 0.1.0
GIT_SHA   := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
BUILD_TS  := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS   := -s -w -X $(PKG)/pkg/buildinfo.Version=$(VERSION) -X $(PKG)/pkg/buildinfo.GitSHA=$(GIT_SHA) -X $(PKG)/pkg/buildinfo.BuildTS=$(BUILD_TS)
BINARIES  := macronode svc-gateway svc-overlay svc-dht svc-storage svc-index svc-mailbox
# Two cores: two test packages at a time.
TESTFLAGS ?= -race -count=1 -p 2 -timeout 12m
# staticcheck is pinned to a module version the Go module proxy serves
# (honnef.co/go/tools v0.8.2 is staticcheck 2026.1.x) and installed per version
# under .tools/, so a different one on $$PATH or in GOPATH is never used.
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK := $(CURDIR)/.tools/staticcheck-$(STATICCHECK_VERSION)/staticcheck
FUZZTIME  ?= 10s

.PHONY: help build run cluster test unit e2e lint vet fmt staticcheck bench fuzz tidy clean

help: ## list the targets (coloured only on a terminal)
	@if [ -t 1 ]; then on='\033[36m'; off='\033[0m'; else on=; off=; fi; \
	awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %s%-11s%s %s\n", on, $$1, off, $$2}' $(MAKEFILE_LIST)

build: ## build all seven binaries into bin/ with version, git sha and build time stamped
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

run: build ## build, then start a node on the embedded defaults (admin on 127.0.0.1:8080)
	$(BIN)/macronode run

N ?= 3
cluster: build ## start N nodes on loopback (N=3); nodes 2..N bootstrap from node 1; Ctrl-C stops them
	N=$(N) ./scripts/cluster.sh

test: vet ## go vet, then unit + e2e tests with the race detector
	$(GO) test $(TESTFLAGS) ./...
	cd e2e && $(GO) test $(TESTFLAGS) ./...

unit: ## unit tests only (root module)
	$(GO) test $(TESTFLAGS) ./...

e2e: ## end-to-end tests only: real binaries, real processes
	cd e2e && $(GO) test $(TESTFLAGS) -v ./...

vet: ## go vet every module
	$(GO) vet ./...
	cd e2e && $(GO) vet ./...

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')

lint: vet staticcheck ## gofmt check, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

staticcheck: ## staticcheck every module (installs staticcheck if missing)
	@test -x $(STATICCHECK) || GOBIN=$(dir $(STATICCHECK)) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(STATICCHECK) ./...
	cd e2e && $(STATICCHECK) ./...

bench: build ## benchmarks: print figures (never pass/fail)
	./scripts/bench.sh

fuzz: ## a short run of every fuzz target (FUZZTIME=10s each)
	./scripts/fuzz.sh $(FUZZTIME)

tidy: ## go mod tidy every module in go.work
	$(GO) mod tidy
	cd e2e && $(GO) mod tidy

clean: ## remove build output
	rm -rf $(BIN)
