# Highway. Quick start: `make dev`, then `make test`.
GO ?= go
# Pinned tool versions: a target that needs a tool installs exactly this one.
GOLANGCI_LINT_VERSION ?= v2.15.0
BIN := $(CURDIR)/bin
GOLANGCI_LINT := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)

# TESTFLAGS lets CI add -race; FUZZTIME bounds each fuzz target in `make test`.
TESTFLAGS ?=
FUZZTIME ?= 10s
# ARGS are passed to `highway dev` (e.g. make dev ARGS=--reset).
ARGS ?=

.PHONY: dev test fuzz lint generate check-generate bench build chain clean ptx

## dev: run the whole marketplace on embedded defaults under ./.highway/
dev:
	$(GO) build -o $(BIN)/highwayd ./cmd/highwayd
	$(GO) run ./cmd/highway dev $(ARGS)

## test: every test (SQLite always, PostgreSQL when 127.0.0.1:5432 answers), then short fuzzing
test:
	$(GO) test $(TESTFLAGS) ./...
ifneq (,$(findstring -race,$(TESTFLAGS)))
	@# The in-process chain network (and the client tests that start one)
	@# trips a known SDK data race (see
	@# chain/network/network_test.go), so it runs race-free here, and so
	@# does the end-to-end loop (API and browser), the replicas behind a balancer
	@# and with a chain (a real agent's one-second PoC), the test that kills `highway dev`
	@# mid-lease, and the full 20-seed × 500-block escrow simulation (the race
	@# build runs a shorter one).
	$(GO) test -count=1 ./chain/network/ ./chain/client/ ./provider-agent/chainlink/
	$(GO) test -count=1 -run 'TestEndToEnd|TestPreemptionEndToEnd|TestBrowserInterruptible|TestShellEndToEnd|TestPortForwardEndToEnd|TestBrowserPortForward|TestBrowserShell|TestBrowserRentAndDispute|TestBuyerCLI|TestDevSurvivesItsCrash|TestHostileInputOnChain|TestReplicasBehindAProxy|TestFailoverWithLeasesInFlight|TestPrivateImageEndToEnd' ./cmd/highway/
	$(GO) test -count=1 -timeout 30m -run TestEscrowSimulation ./chain/app/
endif
	$(MAKE) --no-print-directory fuzz

## fuzz: run each fuzz target for FUZZTIME
# Go's fuzzer sometimes ends a timed run with a bare "context deadline
# exceeded" failure and no failing input (a toolchain flake seen on CI, in
# market/, with nothing to reproduce); such a run is repeated once. Any
# failure that wrote a failing input fails at once.
fuzz:
	@for target in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$target/*_test.go | sed 's/func //'); do \
			echo "fuzz $$target $$f ($(FUZZTIME))"; \
			out=$$($(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$target 2>&1); rc=$$?; echo "$$out"; \
			if [ $$rc -ne 0 ]; then \
				if echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input written'; then \
					echo "fuzz $$target $$f: the fuzzer's deadline flake, once more"; \
					$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$target || exit 1; \
				else exit 1; fi; \
			fi; \
		done; \
	done

## lint: golangci-lint with the project's config (installed at a pinned version)
lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BIN)/golangci-lint $(GOLANGCI_LINT)

## generate: regenerate committed code (templ, protobuf; the GPU prover's PTX where nvcc is installed)
generate:
	$(GO) tool templ generate -path . -log-level warn
	./scripts/protogen.sh
	@if command -v nvcc >/dev/null; then $(MAKE) --no-print-directory ptx; else echo "nvcc not found: keeping the committed PTX (make ptx rebuilds it on a machine with the CUDA toolkit)"; fi

## ptx: rebuild the GPU prover's PTX from its CUDA sources. It needs nvcc
## (a GPU machine has it; CI does not and uses the committed files). The
## output is byte-identical only with the same nvcc (13.0 made the
## committed ones). .version is lowered so older drivers load them: 7.8
## (CUDA 11.8 on) for the mma.sync kernels, which use nothing newer than
## PTX 7.0, and 8.0 (CUDA 12.0 on) for Hopper's wgmma kernels, the first
## version with wgmma.
PTX_SRC := provider-agent/gpuprover/kernels/poc_v2.cu
PTX_H := provider-agent/gpuprover/kernels/poc_v2_sm90a.cu
ptx:
	nvcc -arch=compute_80 -ptx -O3 $(PTX_SRC) -o $(PTX_SRC:.cu=.ptx).tmp
	sed 's/^\.version .*/.version 7.8/' $(PTX_SRC:.cu=.ptx).tmp > $(PTX_SRC:.cu=.ptx)
	nvcc -arch=compute_90a -ptx -O3 $(PTX_H) -o $(PTX_H:.cu=.ptx).tmp
	sed 's/^\.version .*/.version 8.0/' $(PTX_H:.cu=.ptx).tmp > $(PTX_H:.cu=.ptx)
	rm -f $(PTX_SRC:.cu=.ptx).tmp $(PTX_H:.cu=.ptx).tmp

## check-generate: fail if generated code is stale
check-generate: generate
	@git diff --exit-code -- . || { echo "generated code is stale: run make generate and commit"; exit 1; }
	@test -z "$$(git status --porcelain --untracked-files=all | grep -E '(_templ|\.pb|\.pb\.gw|\.pulsar)\.go$$')" || { echo "uncommitted generated files"; exit 1; }

## bench: benchmarks, one line per figure: BENCH <name> <value> <unit>
## (-p 1: one package's benchmarks at a time; go test otherwise runs a
## package per core, and on two cores each figure then shares the machine
## with another package's benchmark)
bench:
	@$(GO) test -p 1 -run '^$$' -bench . -benchtime 1x ./... | awk '\
		/^Benchmark/ { for (i = 3; i < NF; i += 2) if ($$(i+1) ~ /^BENCH:/) { split($$(i+1), a, ":"); print "BENCH", a[2], $$i, a[3] } } \
		/^(FAIL|panic:)/ { print; failed = 1 } \
		/^--- FAIL/ { print; failing = 1; next } \
		/^    / { if (failing) print; next } \
		{ failing = 0 } \
		END { exit failed }'

## build: every binary into ./bin, as the Dockerfile builds them (CI runs it)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/highway ./cmd/highway
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/highwayd ./cmd/highwayd
	CGO_ENABLED=1 $(GO) build -trimpath -o $(BIN)/provider-agent ./cmd/provider-agent

## chain: a single-validator dev network under ./.highway/chain (1 s blocks), started in the foreground
chain:
	$(GO) build -o $(BIN)/highwayd ./cmd/highwayd
	HIGHWAYD=$(BIN)/highwayd ./scripts/chain-init.sh .highway/chain
	$(BIN)/highwayd start --home .highway/chain

clean:
	rm -rf $(BIN)
