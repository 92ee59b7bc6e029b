# band: the Apache ban daemon. `make run` builds and runs it (dry run, embedded
# default config); `make test` installs what the tests need and runs them all.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/band-project/band/buildinfo.version=$(VERSION)
ARGS    ?= --dry-run

.PHONY: build run test test-deps vet bench fuzz package clean

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/ ./cmd/band ./cmd/bandctl

run: build
	./bin/band $(ARGS)

test-deps:
	./scripts/test-deps.sh

test: test-deps
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./apachelog ./rules ./detector ./replay

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./apachelog

# .deb and .rpm in dist/, versioned from git (scripts/package.sh).
package:
	GO=$(GO) ./scripts/package.sh

clean:
	rm -rf bin build dist
