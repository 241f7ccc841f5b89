# orphand — run `make help` for the list of targets.

GO       ?= go
GOBIN    := $(shell $(GO) env GOPATH)/bin
export PATH := $(GOBIN):$(PATH)
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
LDFLAGS  := -s -w -X github.com/orphand/orphand/internal/version.Version=$(VERSION)
BIN      := bin
PKGS     := ./...

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this list of targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## Install linters and the Debian packages the tests use (needs root for apt).
	./scripts/deps.sh

.PHONY: build
build: ## Build the binaries into ./bin.
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

.PHONY: run
run: build ## Build and run the agent in the foreground with its embedded defaults (as root).
	./$(BIN)/orphand serve $(ARGS)

.PHONY: fmt
fmt: ## Format the code (gofumpt via golangci-lint).
	golangci-lint fmt ./...

.PHONY: lint
lint: ## gofmt check, go vet, staticcheck, golangci-lint, go mod tidy check.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	staticcheck $(PKGS)
	golangci-lint run $(PKGS)
	$(GO) mod tidy -diff

.PHONY: test
test: ## Run every test with the race detector (as root, all of them run).
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

.PHONY: fuzz
fuzz: ## Run each fuzz target briefly (FUZZTIME=10s by default; a count such as 40000x works too).
	./scripts/fuzz.sh $(or $(FUZZTIME),10s)

.PHONY: bench
bench: deps ## Run the benchmarks (side-by-side comparisons); see docs/BENCHMARKS.md.
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 60m $(PKGS)

# CI fuzzes each target for a number of executions, not seconds: with a
# duration, Go 1.26's fuzz coordinator can report its own deadline as a
# failure ("context deadline exceeded", no crasher) when a loaded machine
# starves its workers at the end (golang/go#75804, fixed in Go 1.27).
# 40000 executions take 1-7 s per target on an idle 2-core machine.
CI_FUZZTIME ?= 40000x

.PHONY: ci
ci: ## The whole suite on a fresh machine: deps, lint, fuzz briefly, all tests in strict mode.
	./scripts/deps.sh
	$(MAKE) lint
	ORPHAND_TEST_STRICT=1 ORPHAND_PKG_E2E_SUITE=1 $(MAKE) test
	$(MAKE) fuzz FUZZTIME=$(CI_FUZZTIME)

.PHONY: ci-fresh
ci-fresh: ## .ci/run on a clean clone with empty Go and rootfs caches (LOAD=2 adds CPU hogs); see docs/testing.md.
	./scripts/ci-fresh.sh $(or $(REV),HEAD)

# --- packaging (issue 8): the .deb and .rpm, and their proof on a real systemd ---
# packaging/build.sh does the work; docs/packaging.md explains both targets.

.PHONY: package
package: ## Build dist/orphand_<version>_<arch>.deb and dist/orphand-<version>.<arch>.rpm (nfpm).
	GO=$(GO) ./packaging/build.sh -o dist

.PHONY: e2e-package
e2e-package: ## Check the packages, then install, upgrade and purge them in a systemd container (root).
	ORPHAND_PKG_E2E_SUITE=1 $(GO) test -count=1 -timeout 25m -v ./packaging/e2e/
