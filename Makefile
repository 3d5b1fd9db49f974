# strata's build, test and lint entry points. `make` (or `make help`) lists
# the targets; each target's description is the `## ` comment on its line.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# Go lives in /usr/local/go on strata's hosts; keep whatever go is already on
# PATH first.
export PATH := $(PATH):/usr/local/go/bin

GO ?= go
MODULE := strata.dev/strata

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w \
	-X $(MODULE)/internal/version.Version=$(VERSION) \
	-X $(MODULE)/internal/version.Commit=$(COMMIT)

# Pinned tool versions (`make tools`).
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT_PKG := github.com/golangci/golangci-lint/v2/cmd/golangci-lint
BENCHSTAT_VERSION := v0.0.0-20260908200009-22c9c6c9d4da
BENCHSTAT_PKG := golang.org/x/perf/cmd/benchstat

# Knobs.
IMAGE ?= strata:dev
TESTFLAGS ?=
BENCH ?= .
PKG ?= ./...
FUZZTIME ?= 30s
# Minimizing a new input may take this long; Go's default (60s) let the targets that
# unpack archives on disk spend most of a run minimizing.
FUZZMINIMIZE ?= 5s
ESTATE := $(sort $(wildcard examples/estate/*))

.PHONY: help
help: ## List the targets (the default goal)
	@awk 'BEGIN { FS = ":.*## " } \
		/^[a-zA-Z0-9_.-]+:.*## / { printf "  %-12s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo
	@echo "  Variables: BENCH=regex PKG=./internal/... FUZZTIME=30s FUZZMINIMIZE=5s TESTFLAGS=-v SETUP=all|demo"
	@echo "  STRATA_SKIP_PACKAGES=1 makes host-setup leave apt alone."

.PHONY: build
build: ## Build bin/strata with the version and commit stamped in
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/strata ./cmd/strata
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/strata-guest ./cmd/strata-guest

.PHONY: operator-image
operator-image: ## Write bin/strata-image.tar, the image deploy/operator runs (strata:dev; IMAGE=ref to rename)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/strata-static ./cmd/strata
	$(GO) run ./hack/operator-image -program bin/strata-static -o bin/strata-image.tar $(IMAGE)

.PHONY: generate
generate: ## Regenerate the CRDs in deploy/crds from api/v1alpha1 and kubevirt.io/api
	$(GO) -C hack/crdgen build -trimpath -o $(CURDIR)/bin/crdgen .
	bin/crdgen -out deploy/crds -allow-floats ./api/v1alpha1
	bin/crdgen -out deploy/crds/kubevirt -kinds VirtualMachine,VirtualMachineInstance \
		-status VirtualMachine kubevirt.io/api/core/v1

# SETUP=demo prepares only what the daemon runs (make demo); all adds what the tests use.
SETUP ?= all

.PHONY: host-setup
host-setup: ## Prepare this host (root, Debian 12): Go check, runtime packages, test control plane (SETUP=demo: runtime only)
	@hack/host-setup.sh $(SETUP)

.PHONY: tools
tools: ## Install golangci-lint and benchstat (pinned) into ./bin
	@hack/tools.sh golangci-lint $(GOLANGCI_LINT_PKG) $(GOLANGCI_LINT_VERSION) latest
	@hack/tools.sh benchstat $(BENCHSTAT_PKG) $(BENCHSTAT_VERSION)

.PHONY: fmt-check
fmt-check: ## Fail listing every Go file that gofmt would change
	@files=$$(find . -name '*.go' -not -path './.git/*' -not -path './bin/*' \
		-not -path '*/testdata/*' -print0 | xargs -0 -r gofmt -l); \
	if [[ -n $$files ]]; then \
		echo "gofmt: these files need \`gofmt -w\`:"; echo "$$files"; exit 1; \
	fi

.PHONY: lint
lint: tools fmt-check ## gofmt, go vet and golangci-lint over the whole module
	$(GO) vet ./...
	bin/golangci-lint run ./...

.PHONY: test
test: host-setup ## Run every test with the race detector (TESTFLAGS=-v for names)
	$(GO) test -race -count=1 -timeout 45m $(TESTFLAGS) ./...

.PHONY: test-cluster
test-cluster: ## Build the test cluster's binaries (once) and run only the tests on it, with the race detector
	@hack/build-runsc.sh
	@STRATA_KUBE_CLUSTER=1 hack/kube-binaries.sh
	$(GO) test -race -count=1 -timeout 20m $(TESTFLAGS) ./internal/kube/kubecluster/...

.PHONY: bench
bench: ## Run benchmarks into bench.out (BENCH=regex PKG=./internal/...)
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count 6 $(PKG) | tee bench.out
	@if [[ -x bin/benchstat ]]; then bin/benchstat bench.out; \
	else echo "bench: run \`make tools\` for a benchstat summary"; fi

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME (default 30s) each, one at a time
	FUZZTIME=$(FUZZTIME) FUZZMINIMIZE=$(FUZZMINIMIZE) GO=$(GO) hack/fuzz.sh

.PHONY: demo
demo: ## Start the daemon, run the hybrid example (containers, a sandbox, a VM), show it
	@$(MAKE) host-setup SETUP=demo
	@echo "demo: building bin/strata and bin/strata-guest"
	@$(MAKE) build
	@hack/demo.sh

.PHONY: demo-stop
demo-stop: build ## Delete the demo's workloads and stop the daemon it started
	@hack/demo.sh stop

.PHONY: assess-demo
assess-demo: build ## Assess the example estate (four input kinds)
	@bin/strata assess $(addprefix -f ,$(ESTATE))

.PHONY: cover
cover: ## Test with coverage and print the per-function summary's total
	$(GO) test -count=1 -coverprofile=cover.out ./...
	$(GO) tool cover -func=cover.out | tail -n 1

.PHONY: clean
clean: ## Remove build output, benchmark and coverage files
	rm -rf bin/strata bench.out cover.out
