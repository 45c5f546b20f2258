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
build: ## build the server binary into bin/
	$(GO) build -o bin/ironflow ./cmd/server

.PHONY: test
test: ## run every test (SQLite and PostgreSQL)
	$(GO) test -count=1 -timeout 15m $(PKGS)

.PHONY: test-race
test-race: ## run every test with the race detector
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

.PHONY: fuzz
fuzz: ## run each fuzz target briefly (FUZZTIME, default 10s)
	@for t in $$($(GO) test -list '^Fuzz' ./internal/workflow | grep ^Fuzz); do \
		$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $${FUZZTIME:-10s} ./internal/workflow || exit 1; \
	done

.PHONY: lint
lint: ## go vet and the gofmt check
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

.PHONY: generate
generate: ## regenerate the OpenAPI spec in openapi/ from the swag annotations in internal/http
	$(GO) tool swag init --quiet --generalInfo router.go \
		--dir internal/http,internal/engine,internal/workflow \
		--overridesFile .swaggo --output openapi --outputTypes json,yaml

.PHONY: lint-openapi
lint-openapi: ## validate openapi/swagger.json with Redocly CLI (needs npx and the npm registry)
	npx --yes @redocly/cli@2.77.0 lint openapi/swagger.json

.PHONY: bench
bench: ## run the Go benchmarks (BenchmarkExecute and friends)
	$(GO) test -run '^$$' -bench . -benchtime $${BENCHTIME:-2000x} -timeout 30m ./internal/engine/...
