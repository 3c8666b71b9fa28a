package modeltest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/qtool/qtool/internal/fuse"
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/ortpeer"
	"github.com/qtool/qtool/internal/runtime"
	_ "github.com/qtool/qtool/internal/runtime/ops/all"
	"github.com/qtool/qtool/internal/tensor"
)

// sharedDir finds ../shared (from the repository root) by walking up from
// the test's working directory.
func sharedDir() string {
	dir, _ := os.Getwd()
	for {
		p := filepath.Join(dir, "shared", "models")
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return filepath.Join(dir, "shared")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

type tvModel struct {
	name, file, out string
	fused           bool // run through internal/fuse first (Conv+Add+Relu/Clip -> FusedConv)
}

var tvModels = []tvModel{
	{"ResNet18", "resnet18_fp32_opset13.onnx", "resnet18_fp32_output.npy", false},
	{"MobileNetV2", "mobilenet_v2_fp32_bnrecal_opset13.onnx", "mobilenet_v2_fp32_bnrecal_output.npy", false},
	{"ResNet18Fused", "resnet18_fp32_opset13.onnx", "resnet18_fp32_output.npy", true},
	{"MobileNetV2Fused", "mobilenet_v2_fp32_bnrecal_opset13.onnx", "mobilenet_v2_fp32_bnrecal_output.npy", true},
}

func tvDir(tb testing.TB) string {
	s := sharedDir()
	if s == "" {
		tb.Skip("../shared not found")
	}
	return filepath.Join(s, "models", "torchvision-random")
}

func load(tb testing.TB, m tvModel, threads int) (*runtime.Session, map[string]*tensor.Tensor, *graph.Graph) {
	dir := tvDir(tb)
	md, err := model.Load(filepath.Join(dir, m.file))
	if err != nil {
		tb.Skip(err)
	}
	x, err := npy.ReadFile(filepath.Join(dir, "input_1x3x224x224.npy"))
	if err != nil {
		tb.Fatal(err)
	}
	if m.fused {
		rep, err := fuse.Fuse(md.Graph, fuse.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		if rep.Counts["Conv+Relu"]+rep.Counts["Conv+Clip"]+rep.Counts["Conv+Add+Relu"] == 0 {
			tb.Fatalf("fuse did nothing: %v", rep.Counts)
		}
	}
	s, err := runtime.NewSession(md.Graph, runtime.Options{Threads: threads})
	if err != nil {
		tb.Fatal(err)
	}
	return s, map[string]*tensor.Tensor{s.InputNames()[0]: x}, md.Graph
}

// TestTorchvisionOutputs checks both models against PyTorch's output for the
// same input, within 1e-4 of the largest output magnitude (a per-element
// relative bound is meaningless for logits near zero), with 1 and 2 threads
// giving bit-identical results.
func TestTorchvisionOutputs(t *testing.T) {
	for _, m := range tvModels {
		t.Run(m.name, func(t *testing.T) {
			want, err := npy.ReadFile(filepath.Join(tvDir(t), m.out))
			if err != nil {
				t.Fatal(err)
			}
			var first []float32
			for _, threads := range []int{1, 2} {
				s, in, _ := load(t, m, threads)
				out, err := s.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				y := out[s.OutputNames()[0]]
				if !tensor.SameShape(y.Shape, want.Shape) {
					t.Fatalf("shape %v, want %v", y.Shape, want.Shape)
				}
				g, w := y.F32(), want.F32()
				var maxAbs, maxDiff, maxRel float64
				for i := range w {
					d := math.Abs(float64(g[i] - w[i]))
					maxAbs = math.Max(maxAbs, math.Abs(float64(w[i])))
					maxDiff = math.Max(maxDiff, d)
					maxRel = math.Max(maxRel, d/math.Max(math.Abs(float64(w[i])), 1e-3))
				}
				t.Logf("threads %d: max |diff| %.3g, max |want| %.3g, diff/max|want| %.3g, max elementwise rel (|want|>=1e-3) %.3g",
					threads, maxDiff, maxAbs, maxDiff/maxAbs, maxRel)
				if maxDiff > 1e-4*maxAbs {
					t.Errorf("diff %.3g exceeds 1e-4 of max |want| %.3g", maxDiff, maxAbs)
				}
				if first == nil {
					first = g
					continue
				}
				for i := range g {
					if math.Float32bits(g[i]) != math.Float32bits(first[i]) {
						t.Fatalf("threads %d: output %d differs from 1 thread", threads, i)
					}
				}
			}
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ortBench runs the model in ONNX Runtime (tools/peers/ort.js, npm
// onnxruntime-node) at 1 thread and returns its median latency and its CPU
// time per run in ms (the CPU time of a runs-long process minus that of a
// one-run process, so start-up and loading cancel), or zeros when node or
// the npm package is not installed.
func ortBench(tb testing.TB, modelPath, inputName, inputPath string, runs int) (median, cpu float64) {
	node, script, err := ortpeer.Find()
	if err != nil {
		return 0, 0
	}
	run := func(n int) (float64, time.Duration, error) {
		cmd := exec.Command(node, script, "bench", modelPath, "--runs", fmt.Sprint(n), "--warmup", "3", "--threads", "1", inputName+"="+inputPath)
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Run(); err != nil {
			return 0, 0, err
		}
		var res struct {
			P50 float64 `json:"p50_ms"`
		}
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			return 0, 0, err
		}
		return res.P50, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
	}
	_, cpu1, err := run(1)
	if err != nil {
		tb.Logf("ONNX Runtime peer not run: %v", err)
		return 0, 0
	}
	med, cpuN, err := run(runs + 1)
	if err != nil {
		tb.Logf("ONNX Runtime peer not run: %v", err)
		return 0, 0
	}
	return med, float64(cpuN-cpu1) / float64(runs) / 1e6
}

// benchModel times one model at batch 1, 1 thread. Besides ns/op (the mean)
// it reports the median, the process CPU time per run (the development
// machine is shared, so wall time also measures the neighbours) and, when
// the npm peer is installed, ONNX Runtime's median and CPU time per run
// measured right after, with the ratios (x-ort on medians, x-ort-cpu on CPU
// time, the steadier one on a loaded machine).
func benchModel(b *testing.B, m tvModel) {
	s, in, _ := load(b, m, 1)
	for i := 0; i < 3; i++ { // warm-up: pools, page faults
		if _, err := s.Run(in); err != nil {
			b.Fatal(err)
		}
	}
	times := make([]float64, 0, b.N)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := s.Run(in); err != nil {
			b.Fatal(err)
		}
		times = append(times, float64(time.Since(t0))/1e6)
	}
	b.StopTimer()
	cpu := float64(cpuTime()-cpu0) / float64(b.N) / 1e6
	b.ReportMetric(cpu, "cpu-ms/op")
	sort.Float64s(times)
	med := times[len(times)/2]
	b.ReportMetric(med, "median-ms")
	if b.N >= 5 {
		dir := tvDir(b)
		med2, cpu2 := ortBench(b, filepath.Join(dir, m.file), s.InputNames()[0], filepath.Join(dir, "input_1x3x224x224.npy"), max(10, b.N))
		if med2 > 0 {
			b.ReportMetric(med2, "ort-median-ms")
			b.ReportMetric(med/med2, "x-ort")
			b.ReportMetric(cpu2, "ort-cpu-ms/op")
			b.ReportMetric(cpu/cpu2, "x-ort-cpu")
		}
	}
}

func BenchmarkResNet18(b *testing.B)    { benchModel(b, tvModels[0]) }
func BenchmarkMobileNetV2(b *testing.B) { benchModel(b, tvModels[1]) }

// The fused variants run what `qtool fuse` writes (ONNX Runtime fuses the
// same patterns itself when it loads the original model, so its figure is
// the original's).
func BenchmarkResNet18Fused(b *testing.B)    { benchModel(b, tvModels[2]) }
func BenchmarkMobileNetV2Fused(b *testing.B) { benchModel(b, tvModels[3]) }

// TestProfile prints per-op-type time for both models when QTOOL_PROFILE is
// set (a development aid, not a check).
func TestProfile(t *testing.T) {
	if os.Getenv("QTOOL_PROFILE") == "" {
		t.Skip("set QTOOL_PROFILE=1")
	}
	for _, m := range tvModels {
		dir := tvDir(t)
		md, err := model.Load(filepath.Join(dir, m.file))
		if err != nil {
			t.Skip(err)
		}
		x, _ := npy.ReadFile(filepath.Join(dir, "input_1x3x224x224.npy"))
		byOp := map[string]time.Duration{}
		s, err := runtime.NewSession(md.Graph, runtime.Options{Threads: 1, NodeTime: func(n *graph.Node, d time.Duration) {
			byOp[n.OpType] += d
		}})
		if err != nil {
			t.Fatal(err)
		}
		const runs = 10
		in := map[string]*tensor.Tensor{s.InputNames()[0]: x}
		s.Run(in)
		clear(byOp)
		for i := 0; i < runs; i++ {
			if _, err := s.Run(in); err != nil {
				t.Fatal(err)
			}
		}
		for op, d := range byOp {
			t.Logf("%s %-20s %8.3f ms", m.name, op, float64(d)/runs/1e6)
		}
	}
}

// TestConcurrentRuns runs one session from several goroutines at once (a
// Session may be shared): every result must equal the sequential one bit
// for bit, which also exercises the kernels' shared pack caches and scratch
// pools.
func TestConcurrentRuns(t *testing.T) {
	s, in, _ := load(t, tvModels[3], 2)
	ref, err := s.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	want := ref[s.OutputNames()[0]].F32()
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for i := 0; i < 3; i++ {
				out, err := s.Run(in)
				if err != nil {
					errs <- err
					return
				}
				for j, v := range out[s.OutputNames()[0]].F32() {
					if math.Float32bits(v) != math.Float32bits(want[j]) {
						errs <- fmt.Errorf("run %d: output %d = %v, want %v", i, j, v, want[j])
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
