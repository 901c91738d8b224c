# lklog: see README.md. Every target works on a fresh Debian machine with Go;
# targets that need extra packages install them through scripts/deps.sh.
GO        ?= go
BIN       := bin
CMDS      := memlogd logread
PKGCMDS   := $(wildcard pkg/*/cmd/*)
STATICCHECK_VERSION := v0.8.0

export CGO_ENABLED := 0

.PHONY: all build deps test test-go test-vm bench lint run demo images fuzz clean

all: build

build:
	@mkdir -p $(BIN)
	@for d in $(PKGCMDS); do \
		$(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/$$(basename $$d) ./$$d || exit 1; \
	done

# Debian packages the tests use (logger, unshare, debugfs, busybox, python3).
deps:
	./scripts/deps.sh

# Go tests (unit, fuzz seeds, integration tests of the built binaries).
test-go: build deps
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m ./...

# QEMU test cases in test/cases (installs qemu, a Debian kernel and busybox
# on first use, cached under .cache/). STRESS=N keeps N CPU-bound processes
# running meanwhile (a busy host; e.g. STRESS=$$((2 * $$(nproc)))).
STRESS ?= 0
test-vm: build
	$(GO) run ./tools/vmtest -cases test/cases -stress $(STRESS)

# Everything: the README's test command.
test: test-go test-vm

bench: build
	$(GO) run ./tools/bench

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...
	@# LinuxKit builds images for arm64 too; 386 catches ints that only fit in 64 bits.
	GOARCH=arm64 $(GO) vet ./...
	GOARCH=386 $(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# The README's main command: boots examples/minimal.yml in QEMU.
# RUNFLAGS=-echo-console keeps memlogd's console echo on the console.
RUNFLAGS ?=
run: build
	$(GO) run ./tools/vmtest -run examples/minimal.yml $(RUNFLAGS)

# Local demo without a VM: memlogd on sockets in a temporary directory.
demo: build
	./scripts/demo.sh

images: build
	$(GO) run ./tools/mkimage -out out/images

# LinuxKit packages with the real tool (needs `linuxkit` on PATH and a
# Docker engine; neither is available in CI: use `make images` there).
pkg-%: build
	@command -v linuxkit >/dev/null || { echo "pkg-$*: the linuxkit tool is not on PATH; get it from github.com/linuxkit/linuxkit (go install ./src/cmd/linuxkit in a checkout) or use 'make images'"; exit 1; }
	@mkdir -p pkg/$*/usr/bin
	@for b in $$(ls pkg/$*/cmd); do cp $(BIN)/$$b pkg/$*/usr/bin/; done
	linuxkit pkg build pkg/$*

# Short fuzzing of every parser (go test -fuzz runs one target at a time).
FUZZTIME ?= 20s
fuzz:
	@for t in $$(grep -rl --include='*_test.go' '^func Fuzz' internal); do \
		d=$$(dirname $$t); for f in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$t | cut -c6-); do \
			echo "== $$d $$f"; $(GO) test -run XXX -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) ./$$d || exit 1; \
		done; done

clean:
	rm -rf $(BIN) out
