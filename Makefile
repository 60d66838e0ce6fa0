GO ?= go
BIN := bin/grappe

.PHONY: build test test-short race proto vet contract bench chaos clean

build:
	$(GO) build -o $(BIN) ./cmd/grappe

# Every test: unit, end-to-end (real master and workers on 127.0.0.1:0),
# with the race detector, then the external contract check.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 25m ./...
	@if [ -x ../shared/contract-check ]; then ../shared/contract-check; else echo "contract-check not found beside the project, skipped"; fi

test-short:
	$(GO) test -short -count=1 ./...

proto:
	protoc --go_out=. --go_opt=paths=source_relative \
	       --go-grpc_out=. --go-grpc_opt=paths=source_relative \
	       api/clusterpb/cluster.proto

vet:
	$(GO) vet ./...

contract:
	../shared/contract-check

# The full chaos test: 1,000 jobs, real processes, kill -9 of workers and of
# the master (make test runs a 150-job version).
chaos:
	$(GO) test -count=1 -run TestChaos -timeout 30m -v ./internal/chaos -chaos.jobs 1000 -chaos.workers 4

bench: build
	$(BIN) bench --jobs 2000 --concurrency 32

clean:
	rm -rf bin
