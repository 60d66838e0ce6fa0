GO ?= go
BIN := bin/grappe

.PHONY: build test test-short race proto vet contract bench chaos chaos-masters fuzz clean web web-test openapi-check

build:
	$(GO) build -o $(BIN) ./cmd/grappe

# Every test: unit, end-to-end (real master and workers on 127.0.0.1:0),
# with the race detector, then the external contract check.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 25m ./...
	$(MAKE) fuzz FUZZTIME=15s
	@if [ -x ../shared/contract-check ]; then ../shared/contract-check; else echo "contract-check not found beside the project, skipped"; fi

test-short:
	$(GO) test -short -count=1 ./...

# The web UI: internal/web/ui (TypeScript, CSS) → internal/web/dist, which is
# committed so that `go build` alone works. Rebuild and commit after any
# change to ui/ (TestBundleIsFresh fails otherwise).
web:
	cd internal/web && npm ci --no-audit --no-fund && npx tsc --noEmit -p . && node build.mjs

# The browser tests alone (chromium and `npm ci` in internal/web needed;
# make test runs them too). GRAPPE_WEB_SHOTS=DIR keeps the screenshots.
web-test:
	$(GO) test -count=1 -run 'TestBrowser|TestBundleIsFresh' -v ./internal/web

proto:
	protoc --go_out=. --go_opt=paths=source_relative \
	       --go-grpc_out=. --go-grpc_opt=paths=source_relative \
	       internal/clusterpb/cluster.proto

vet:
	$(GO) vet ./...

# The OpenAPI document (api/openapi.yaml) against the server: every route
# documented and served, every answer of a real master valid. These tests
# are part of `go test ./...` too; this runs them alone.
openapi-check:
	$(GO) test -count=1 -run 'TestOpenAPI|TestJSON|TestDocumentIsOpenAPI31|TestParseRefusesBrokenDocuments|TestCheckResponse' ./internal/openapi/... ./internal/httpapi ./internal/clustertest

contract:
	../shared/contract-check

# The full chaos test: 1,000 jobs, real processes, kill -9 of workers and of
# the master (make test runs a 150-job version).
chaos:
	$(GO) test -count=1 -run 'TestChaos$$' -timeout 30m -v ./internal/chaos -chaos.jobs 1000 -chaos.workers 4

# The full multi-master chaos test (issue 13): three masters on a throwaway
# PostgreSQL, four workers, 2,000 jobs; a master killed with kill -9 every
# 10 s, workers every 3 s, PostgreSQL restarted once (make test runs a
# 300-job version). CHAOS_LOGS=DIR keeps the processes' logs.
chaos-masters:
	$(GO) test -count=1 -run 'TestChaosMasters$$' -timeout 40m -v ./internal/chaos -chaos.masters-jobs 2000 -chaos.master-kill-every 10s $(if $(CHAOS_LOGS),-chaos.logs $(CHAOS_LOGS))

# Fuzz the decoding and validation of what strangers send (the seed corpus
# is in testdata/fuzz and runs with every go test).
FUZZTIME ?= 1m
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzValidate$$' -fuzztime $(FUZZTIME) ./internal/master
	$(GO) test -run '^$$' -fuzz '^FuzzSubmitBody$$' -fuzztime $(FUZZTIME) ./internal/httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzLoginBody$$' -fuzztime $(FUZZTIME) ./internal/httpapi

bench: build
	$(BIN) bench --jobs 2000 --concurrency 32

clean:
	rm -rf bin
