# loteria — make drives everything. `make help` lists every target.
SHELL := /bin/bash
GO ?= go
BIN := bin
AGENCIES ?= 5
DATA_DIR ?=
COMPOSE_FILE ?= deploy/out/docker-compose.yaml
# A count, not a duration: Go 1.26's fuzz coordinator can report a spurious
# "context deadline exceeded" when a duration runs out (go.dev/issue/75804).
FUZZTIME ?= 200000x
# Every program under services/cmd (certs included once it lands).
PROGRAMS := $(notdir $(wildcard services/cmd/*))
# The Jaeger the stack tests run: bin/jaeger once built (make jaeger),
# unless LOTERIA_JAEGER names another. Evaluated when used.
LOTERIA_JAEGER ?= $(if $(wildcard $(BIN)/jaeger),$(CURDIR)/$(BIN)/jaeger)
export LOTERIA_JAEGER
# go test through gotestsum: the same output as go test, then the skipped
# tests with their reasons (not under CI, where nothing should skip).
GOTESTSUM := $(BIN)/gotestsum --format standard-quiet $(if $(CI),--hide-summary=skipped) --

.PHONY: help build demo test test-unit vet fmt-check lint fuzz bench jaeger compose up down logs loadtest dashboards clean

help: ## this list: every target, and what it does
	@awk '/^[a-z][a-z0-9-]*:([^=]|$$)/ { t = $$0; sub(/:.*/, "", t); d = ""; \
	  if (match($$0, /## .*/)) d = substr($$0, RSTART + 3); printf "  %-12s %s\n", t, d }' $(MAKEFILE_LIST)

build: ## static binaries of every program in bin/ (central, agency, gendata, loadtest, ...)
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ $(addprefix ./services/cmd/,$(PROGRAMS))

demo: ## the whole system on loopback, no Docker: free ports, a fresh store, every winner (DATA_DIR=, AGENCIES=, PORT=, STORE_DIR=, KEEP=1)
	@DATA_DIR='$(DATA_DIR)' AGENCIES='$(AGENCIES)' scripts/demo.sh

jaeger: $(BIN)/jaeger ## the Jaeger v2 all-in-one, built from its own module (tools/jaeger)
$(BIN)/jaeger: tools/jaeger/go.mod tools/jaeger/go.sum
	@mkdir -p $(BIN)
	cd tools/jaeger && CGO_ENABLED=0 $(GO) build -o ../../$(BIN)/jaeger github.com/jaegertracing/jaeger/cmd/jaeger

$(BIN)/gotestsum: tools/gotestsum/go.mod tools/gotestsum/go.sum
	@mkdir -p $(BIN)
	cd tools/gotestsum && CGO_ENABLED=0 $(GO) build -o ../../$(BIN)/gotestsum gotest.tools/gotestsum

vet: ## go vet ./... (compiles every package: a minute or two on a cold cache)
	$(GO) vet ./...

fmt-check: ## gofmt -l on every Go file
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

lint: fmt-check vet ## gofmt, go vet, dashboards JSON up to date, shellcheck of scripts/ (when installed)
	$(GO) run ./dashboards/cmd/gen -check
	@if command -v shellcheck >/dev/null; then shellcheck -x scripts/*.sh; else echo "shellcheck not installed: scripts/*.sh not checked (apt-get install shellcheck)"; fi

test-unit: $(BIN)/gotestsum ## go test -race ./... (no fuzzing; the Jaeger test runs when bin/jaeger exists), then the skipped tests
	$(GOTESTSUM) -race -count=1 ./...

fuzz: ## each fuzz target for FUZZTIME (200000x: executions, not seconds)
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' $$dir/*_test.go 2>/dev/null | awk '{print $$2}'); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; \
	done

# Each long step of make test says what it is doing and how long it takes
# before it starts. Measured cold (empty module and build caches) on 2 busy
# cores: 31 min in all, 266 MB downloaded (1.5 GB of modules unpacked);
# warm: 3.5 min. See the README.
test: ## everything CI runs: lint, race tests (real Prometheus and Jaeger), fuzzing; then the skipped tests
	@printf '\n--- make test: %s\n' 'lint: gofmt, go vet, dashboards JSON, shellcheck (go vet compiles every package: ~5 min on a cold cache, seconds when warm)'
	@$(MAKE) -s lint
	@if $(MAKE) -s -q $(BIN)/jaeger 2>/dev/null; then \
	  printf '\n--- make test: %s\n' 'tools: bin/jaeger is up to date; gotestsum'; \
	 else \
	  printf '\n--- make test: %s\n' 'tools: building the Jaeger v2 all-in-one into bin/jaeger (~6-10 min on a cold machine, 17 min measured on 2 busy cores; seconds when cached), then gotestsum'; \
	 fi
	@$(MAKE) -s $(BIN)/jaeger $(BIN)/gotestsum
	@printf '\n--- make test: %s\n' 'race tests: go test -race ./... with real TCP, processes, Prometheus and Jaeger (3-7 min; the skipped tests are listed at the end)'
	@LOTERIA_JAEGER=$(CURDIR)/$(BIN)/jaeger $(GOTESTSUM) -race -count=1 ./...
	@printf '\n--- make test: %s\n' 'fuzzing: every fuzz target for $(FUZZTIME) executions (1-2 min)'
	@$(MAKE) -s fuzz

bench: ## Go benchmarks of the hot paths (several minutes; docs/BENCHMARKS.md has the figures)
	$(GO) test -run='^$$' -bench=. -benchmem ./services/...

compose: ## deploy/out/ for AGENCIES=N (generates data for agencies without a file)
	$(GO) run ./services/cmd/gendata --agencies $(AGENCIES) --out .data
	$(GO) run ./deploy/cmd/generar-compose --agencies $(AGENCIES) --output $(COMPOSE_FILE) $(if $(DATA_DIR),--data-dir $(DATA_DIR))

up: compose ## docker compose up (needs a Docker engine)
	docker compose -f $(COMPOSE_FILE) up -d --build

down: ## docker compose down
	docker compose -f $(COMPOSE_FILE) down

logs: ## follow the stack's logs
	docker compose -f $(COMPOSE_FILE) logs -f

loadtest: build ## many agencies against an in-process central (ARGS=... for flags)
	$(BIN)/loadtest $(ARGS)

dashboards: ## regenerate dashboards/*.json from code
	$(GO) run ./dashboards/cmd/gen

clean: ## remove bin/ and deploy/out/
	rm -rf $(BIN) deploy/out
