# ironflow — `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
PKGS := ./...

# Postgres suites create their own databases through this server.
IRONFLOW_TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
export IRONFLOW_TEST_DATABASE_URL

# `make run` allows webhooks to loopback receivers for local development; any variable
# already set in the environment wins.
IRONFLOW_WEBHOOK_ALLOW_NETS ?= 127.0.0.0/8,::1/128
export IRONFLOW_WEBHOOK_ALLOW_NETS

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

.PHONY: run
run: ## run the server on 127.0.0.1:8080 with embedded SQLite under ./data
	$(GO) run ./cmd/server

.PHONY: build
build: ## build the server (bin/ironflow-server) and the CLI (bin/ironflow) into bin/
	$(GO) build -o bin/ironflow-server ./cmd/server
	$(GO) build -o bin/ironflow ./cmd/ironflow

.PHONY: test
test: ## run every test (SQLite and PostgreSQL), the bench/ module's too
	$(GO) test -count=1 -timeout 15m $(PKGS)
	cd bench && $(GO) test -count=1 ./...

.PHONY: test-race
test-race: ## run every test with the race detector
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

.PHONY: fuzz
fuzz: ## run each fuzz target briefly (FUZZTIME, default 10s)
	@for pkg in ./internal/workflow ./internal/http; do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep ^Fuzz); do \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $${FUZZTIME:-10s} $$pkg || exit 1; \
		done; \
	done

.PHONY: test-reliability
test-reliability: ## run the reliability suite's long variants (kill -9, three servers, database faults, receiver chaos, hostile input)
	IRONFLOW_RELIABILITY=long $(GO) test -count=1 -timeout 30m -v ./test/reliability/

.PHONY: soak
soak: ## soak test: steady load for DURATION (default 30m) at RATE inputs/s (default 50), sampling memory, goroutines, connections, table sizes; not in CI
	IRONFLOW_SOAK_DURATION=$${DURATION:-30m} IRONFLOW_SOAK_RATE=$${RATE:-50} $(GO) test -count=1 -timeout 0 -run '^TestSoak$$' -v ./test/reliability/

.PHONY: test-ui
test-ui: ## run the web console's browser test (Debian chromium, or the path in CHROMIUM; Node.js and npm)
	cd test/ui && npm ci --no-audit --no-fund && npm test

.PHONY: test-clients
test-clients: ## generate clients from openapi/openapi.json (TypeScript: openapi-typescript + openapi-fetch, tsc --strict; Go: oapi-codegen, ogen) and run the README walk-through through each against a real server (Node.js and npm)
	test/clients/run.sh

.PHONY: docs
docs: ## regenerate the configuration table of docs/OPERATIONS.md from internal/config
	$(GO) test -count=1 -run '^TestOperationsDocConfigReference$$' ./internal/config -update

.PHONY: lint
lint: ## go vet (the bench/ module too: it builds on internal packages) and the gofmt check
	$(GO) vet $(PKGS)
	cd bench && $(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

.PHONY: generate
generate: ## regenerate openapi/openapi.json (OpenAPI 3.1) from the swag annotations in internal/http
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(GO) tool swag init --quiet --generalInfo router.go --requiredByDefault \
		--dir internal/http,internal/engine,internal/workflow \
		--overridesFile .swaggo --output "$$tmp" --outputTypes json && \
	$(GO) run ./openapi/gen -in "$$tmp/swagger.json" -out openapi/openapi.json

.PHONY: lint-openapi
lint-openapi: ## lint openapi/openapi.json with Redocly CLI (redocly.yaml; needs npx and the npm registry)
	npx --yes @redocly/cli@2.77.0 lint openapi/openapi.json

.PHONY: bench
bench: ## ironbench: ironflow vs the SQL ceiling, DBOS and River in one run (< 15 min); rewrites its block of docs/BENCHMARKS.md
	cd bench && $(GO) run ./cmd/ironbench $(BENCH_FLAGS)

.PHONY: bench-quick
bench-quick: ## ironbench in its quick mode (< 2 min)
	cd bench && $(GO) run ./cmd/ironbench -quick $(BENCH_FLAGS)

.PHONY: bench-growth
bench-growth: ## data growth on PostgreSQL: seed GROWTH_N finished instances (default 1,000,000; 10,000,000 needs about 40 GB and hours) and measure inputs, every list, the feed and pruning; rewrites its block of docs/SCALING.md
	cd bench && $(GO) run ./cmd/ironbench -only growth -backends postgres -growth-n $${GROWTH_N:-1000000} $(BENCH_FLAGS)

.PHONY: bench-go
bench-go: ## run the Go benchmarks (BenchmarkExecute and friends)
	$(GO) test -run '^$$' -bench . -benchtime $${BENCHTIME:-2000x} -timeout 30m ./internal/engine/...
