# qtool: common tasks. `make help` lists them.
GO        ?= go
BIN       ?= bin/qtool
FUZZTIME  ?= 30s
PKGS      := ./...
PEERS     := tools/peers

.PHONY: help build test test-short demo accuracy proto fuzz lint peers arm64-test bench-float bench-peers clean

help:
	@echo "make build        build $(BIN)"
	@echo "make test         run every test (what CI runs)"
	@echo "make demo         build qtool and run it on the MNIST example in examples/"
	@echo "make accuracy     the full accuracy figures (slow)"
	@echo "make proto        regenerate internal/model/onnxpb from onnx.proto (needs protoc, protoc-gen-go)"
	@echo "make fuzz         run each fuzz target for FUZZTIME (default $(FUZZTIME))"
	@echo "make lint         gofmt, go vet, staticcheck"
	@echo "make peers        install ONNX Runtime (npm) for peer tests and benchmarks"
	@echo "make bench-float  ResNet-18 and MobileNetV2 float, 1 thread: qtool vs ONNX Runtime (needs make peers)"
	@echo "make bench-peers  the same, float and int8, qtool vs ONNX Runtime and PyTorch where installed"
	@echo "make arm64-test   run the simd and runtime tests for arm64 under qemu"
	@echo "make report-check render the eval HTML report in headless Chromium and check it"

build:
	$(GO) build -o $(BIN) ./cmd/qtool

test:
	$(GO) test -timeout 20m $(PKGS)

test-short:
	$(GO) test -short $(PKGS)

DEMO := $(or $(DEMO_DIR),/tmp/qtool-demo)

demo: build
	@mkdir -p $(DEMO)
	@echo "== qtool inspect: what is in the model"
	$(BIN) inspect examples/mnist/mnist-8.onnx
	@echo
	@echo "== qtool run: classify four MNIST test digits (labels 7 2 1 0)"
	@set -e; for f in examples/mnist/digits/digit*.npy; do \
		echo "$$f:"; $(BIN) run examples/mnist/mnist-8.onnx --input $$f --output-dir $(DEMO) --quiet --print | grep argmax; \
	done
	@echo
	@echo "== qtool quantize: fuse, calibrate on 200 digits, write int8 QDQ ONNX"
	$(BIN) quantize examples/mnist/mnist-8.onnx --data examples/mnist/calib.npz --config configs/x86.yaml -o $(DEMO)/mnist-8.int8.onnx
	@echo
	@echo "== qtool eval: float vs int8 on 1,000 other digits"
	$(BIN) eval examples/mnist/mnist-8.onnx $(DEMO)/mnist-8.int8.onnx --data examples/mnist/eval.npz --labels examples/mnist/eval_labels.npy
	@echo
	@echo "== qtool bench: float vs int8 latency, 1 thread, runs interleaved"
	$(BIN) bench examples/mnist/mnist-8.onnx $(DEMO)/mnist-8.int8.onnx --threads 1 --runs 300

# Full accuracy figures of issue 8 (x86 vs ort-default presets; mnist-8,
# squeezenet-cifar10, silero VAD). Slow: not part of make test.
accuracy:
	QTOOL_ACCURACY=full $(GO) test -count=1 -run 'Accuracy|Silero' -v -timeout 30m ./internal/convert

proto:
	cd internal/model/onnxpb && protoc --go_out=. --go_opt=paths=source_relative onnx.proto

# Every fuzz target of the repo, one after the other (go test -fuzz takes one
# target per run), each for FUZZTIME; found by name so new targets join.
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' internal cmd | sort); do \
	  for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "== $$t ./$$(dirname $$f) for $(FUZZTIME)"; \
	    $(GO) test -run='^$$' -fuzz="^$$t\$$" -fuzztime=$(FUZZTIME) ./$$(dirname $$f); \
	  done; \
	done

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet $(PKGS)
	staticcheck $(PKGS)

peers:
	cd $(PEERS) && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund

# Benchmarks: the peers take turns inference by inference because the
# machine is shared; see tools/benchpeers.
BENCH_RUNS  ?= 41
BENCH_FLAGS  = --qtool $(BIN) --runs $(BENCH_RUNS) --threads 1

bench-float: build
	$(GO) run ./tools/benchpeers $(BENCH_FLAGS) --goal 1.1

bench-peers: build
	$(GO) run ./tools/benchpeers $(BENCH_FLAGS) --int8 --torch

# arm64 under qemu-user (apt-get install qemu-user-static): max has every
# extension (SDOT, I8MM), neoverse-n1 SDOT without I8MM, cortex-a53 plain
# NEON; q8's QTOOL_ISA choice is checked in-process for each forced name
# (qemu-user cannot re-execute a test binary without binfmt_misc); the QDQ
# rewrite, the quantized ops and their ONNX node tests (QLinearConv,
# QLinearMatMul, ConvInteger, MatMulInteger, DynamicQuantizeLinear; every q8
# path) run on each CPU. Then the ONNX node tests of every op (the f32
# asimd kernel) under -cpu max. About 3 minutes here.
ARM64_CPUS ?= max neoverse-n1 cortex-a53
arm64-test:
	set -e; for c in $(ARM64_CPUS); do \
	  echo "== qemu -cpu $$c"; \
	  GOARCH=arm64 $(GO) test -exec "qemu-aarch64-static -cpu $$c" ./internal/simd/...; \
	  for isa in generic neon sdot dotprod avx2; do \
	    QTOOL_ISA=$$isa GOARCH=arm64 $(GO) test -exec "qemu-aarch64-static -cpu $$c" -run '^TestARM64' ./internal/simd/q8; \
	  done; \
	  GOARCH=arm64 $(GO) test -exec "qemu-aarch64-static -cpu $$c" ./internal/runtime/qdq/ ./internal/runtime/ops/qlinear/ ./internal/runtime/ops/quant/; \
	done
	GOARCH=arm64 $(GO) test -exec "qemu-aarch64-static -cpu max" -run 'TestONNXNodeTests|TestLibONNX' ./internal/runtime/ops/all/

# The HTML report of qtool eval rendered in headless Chromium (apt-get
# install chromium) on the MNIST example: the screenshot must not be blank
# and must show the SVG plots (internal/eval's TestReportScreenshot reads it).
.PHONY: report-check
report-check: build
	set -e; d=$${REPORT_DIR:-$$(mktemp -d)}; d=$$(cd $$d && pwd); \
	$(BIN) quantize examples/mnist/mnist-8.onnx --data examples/mnist/calib.npz -o $$d/mnist.int8.onnx --quiet; \
	$(BIN) eval examples/mnist/mnist-8.onnx $$d/mnist.int8.onnx --data examples/mnist/eval.npz --labels examples/mnist/eval_labels.npy --report $$d/report.html --quiet >/dev/null; \
	chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking --disable-component-update --disable-sync --user-data-dir=$$d/chromium-profile --screenshot=$$d/report.png --window-size=1200,1600 file://$$d/report.html 2>/dev/null; \
	QTOOL_REPORT_PNG=$$d/report.png $(GO) test -count=1 -v -run '^TestReportScreenshot$$' ./internal/eval; \
	echo "report: $$d/report.html, screenshot: $$d/report.png"

clean:
	rm -rf bin
