# loteria — make drives everything. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin
AGENCIES ?= 5
DATA_DIR ?=
COMPOSE_FILE ?= deploy/out/docker-compose.yaml
# A count, not a duration: Go 1.26's fuzz coordinator can report a spurious
# "context deadline exceeded" when a duration runs out (go.dev/issue/75804).
FUZZTIME ?= 200000x

PROGRAMS := central agency gendata loadtest certs

.PHONY: help build demo test test-unit vet fmt-check lint fuzz bench jaeger compose up down logs loadtest dashboards clean

help: ## this list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## static binaries in bin/
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ $(addprefix ./services/cmd/,$(filter $(PROGRAMS),$(notdir $(wildcard services/cmd/*))))

demo: ## the whole system on loopback, no Docker (DATA_DIR=dir uses the course's files)
	DATA_DIR=$(DATA_DIR) AGENCIES=$(AGENCIES) scripts/demo.sh

jaeger: $(BIN)/jaeger ## the Jaeger v2 all-in-one, built from its own module (tools/jaeger)
$(BIN)/jaeger: tools/jaeger/go.mod tools/jaeger/go.sum
	@mkdir -p $(BIN)
	cd tools/jaeger && CGO_ENABLED=0 $(GO) build -o ../../$(BIN)/jaeger github.com/jaegertracing/jaeger/cmd/jaeger

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

lint: fmt-check vet ## gofmt, go vet, dashboards JSON up to date
	$(GO) run ./dashboards/cmd/gen -check

test-unit: ## go test -race ./... (no fuzzing)
	$(GO) test -race -count=1 ./...

fuzz: ## each fuzz target for FUZZTIME
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' $$dir/*_test.go 2>/dev/null | awk '{print $$2}'); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; \
	done

test: lint jaeger ## everything CI runs: lint, race tests (with real Prometheus and Jaeger), fuzzing
	LOTERIA_JAEGER=$(CURDIR)/$(BIN)/jaeger $(GO) test -race -count=1 ./...
	$(MAKE) fuzz

bench: ## Go benchmarks of the hot paths
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

clean:
	rm -rf $(BIN) deploy/out
