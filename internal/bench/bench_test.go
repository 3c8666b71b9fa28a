package bench

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	_ "github.com/qtool/qtool/internal/runtime/ops/all"
	"github.com/qtool/qtool/internal/tensor"
)

// Expected values from NumPy 1.24 (np.percentile, default "linear" method).
func TestPercentileMatchesNumPy(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5, 7, 10} // sorted [5 1 4 2 3 10 7]
	for _, c := range []struct{ p, want float64 }{
		{0, 1}, {10, 1.6}, {50, 4}, {90, 8.2}, {99, 9.82}, {100, 10},
	} {
		if got := Percentile(s, c.p); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("p%g = %g, want %g", c.p, got, c.want)
		}
	}
	if got := Percentile([]float64{3}, 99); got != 3 {
		t.Errorf("single sample p99 = %g", got)
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("no samples should give NaN")
	}
	if got := Median([]float64{9, 1, 5, 3}); got != 4 {
		t.Errorf("median of 4 = %g, want 4", got)
	}
}

func TestSummarize(t *testing.T) {
	st := Summarize([]float64{4, 2, 6, 8})
	if st.N != 4 || st.Min != 2 || st.Max != 8 || st.Mean != 5 || st.P50 != 5 {
		t.Fatalf("%+v", st)
	}
	// sample stddev of 2,4,6,8 = sqrt(20/3)
	if math.Abs(st.Stddev-math.Sqrt(20.0/3)) > 1e-12 {
		t.Errorf("stddev %g", st.Stddev)
	}
	if z := Summarize(nil); z != (Stats{}) {
		t.Errorf("empty: %+v", z)
	}
	if _, err := json.Marshal(Summarize(nil)); err != nil {
		t.Error(err)
	}
}

func TestStableRule(t *testing.T) {
	flat := make([]float64, 40)
	for i := range flat {
		flat[i] = 10 + 0.01*float64(i%3) // jitter well within 1%
	}
	if !Stable(flat, 10, 0.01) {
		t.Error("flat samples should be stable")
	}
	if Stable(flat[:9], 10, 0.01) {
		t.Error("fewer than minRuns samples must not be stable")
	}
	// The machine slowed down by 20% half way: the recent half's median
	// (12) is far from the whole's.
	drift := make([]float64, 40)
	for i := range drift {
		drift[i] = 10
		if i >= 20 {
			drift[i] = 12
		}
	}
	if Stable(drift, 10, 0.01) {
		t.Error("a step in the recent half must not be stable")
	}
	if !Stable(drift, 10, 0.25) {
		t.Error("within a 25% tolerance the step is stable")
	}
	// Outliers do not move a median: one huge run among steady ones.
	spiky := append([]float64(nil), flat...)
	spiky[35] = 1000
	if !Stable(spiky, 10, 0.01) {
		t.Error("a single outlier should not break stability")
	}
}

func TestMeasureFixedRunsInterleaves(t *testing.T) {
	var order []string
	mk := func(name string) func() error {
		return func() error { order = append(order, name); return nil }
	}
	warm := -1
	res, err := Measure([]func() error{mk("A"), mk("B")}, Options{Warmup: 1, Runs: 3,
		AfterWarmup: func() { warm = len(order) }})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ""); got != "ABABBAAB" {
		t.Errorf("call order %s, want warm-up AB then AB BA AB", got)
	}
	if warm != 2 {
		t.Errorf("AfterWarmup after %d calls, want 2", warm)
	}
	if len(res.Samples[0]) != 3 || len(res.Samples[1]) != 3 || res.Stable {
		t.Errorf("samples %d/%d stable %v", len(res.Samples[0]), len(res.Samples[1]), res.Stable)
	}
}

// fakeClock replaces Measure's clock; a simulated run advances it.
type fakeClock struct{ t time.Time }

func useFakeClock(t *testing.T) *fakeClock {
	c := &fakeClock{t: time.Unix(0, 0)}
	now = func() time.Time { return c.t }
	t.Cleanup(func() { now = time.Now })
	return c
}

func TestMeasureStopsAtRunCapWhenDrifting(t *testing.T) {
	clk := useFakeClock(t)
	i := 0
	slower := func() error { // each run longer than the last: never stable
		i++
		clk.t = clk.t.Add(time.Duration(i) * time.Millisecond)
		return nil
	}
	res, err := Measure([]func() error{slower}, Options{MinRuns: 5, MaxRuns: 25, MinTime: time.Millisecond, Tolerance: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stable || len(res.Samples[0]) != 25 {
		t.Errorf("stable %v after %d runs, want the 25-run cap", res.Stable, len(res.Samples[0]))
	}
	if res.Samples[0][24] != 25*time.Millisecond || res.Elapsed != 325*time.Millisecond {
		t.Errorf("last sample %v, elapsed %v", res.Samples[0][24], res.Elapsed)
	}
}

func TestMeasureStopsAtTimeCap(t *testing.T) {
	clk := useFakeClock(t)
	i := 0
	slower := func() error { // 1 ms, 2 ms, ...: never stable
		i++
		clk.t = clk.t.Add(time.Duration(i) * time.Millisecond)
		return nil
	}
	res, err := Measure([]func() error{slower}, Options{MinRuns: 4, MaxRuns: 1000, MinTime: time.Millisecond, MaxTime: time.Second, Tolerance: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	// 1+2+...+45 ms is the first sum over 1 s.
	if n := len(res.Samples[0]); res.Stable || n != 45 {
		t.Errorf("stable %v after %d runs, want the time cap after 45", res.Stable, n)
	}
}

func TestMeasureStopsWhenStable(t *testing.T) {
	clk := useFakeClock(t)
	steady := func() error { clk.t = clk.t.Add(2 * time.Millisecond); return nil }
	// Stable from the start, but MinTime asks for 100 ms of samples.
	res, err := Measure([]func() error{steady}, Options{MinRuns: 5, MaxRuns: 500, MinTime: 100 * time.Millisecond, MaxTime: 5 * time.Second, Tolerance: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Stable || len(res.Samples[0]) != 50 {
		t.Errorf("stable %v after %d runs, want stable after 50 (MinTime)", res.Stable, len(res.Samples[0]))
	}
}

func TestMeasureErrors(t *testing.T) {
	boom := errors.New("boom")
	n := 0
	_, err := Measure([]func() error{func() error {
		n++
		if n == 3 {
			return boom
		}
		return nil
	}}, Options{Runs: 5})
	if !errors.Is(err, boom) {
		t.Errorf("err %v", err)
	}
	if _, err := Measure(nil, Options{}); err == nil {
		t.Error("no functions should fail")
	}
	if _, err := Measure([]func() error{func() error { return nil }}, Options{Runs: -1}); err == nil {
		t.Error("negative runs should fail")
	}
}

func TestParseStatus(t *testing.T) {
	b := []byte("Name:\tqtool\nVmPeak:\t  999 kB\nVmHWM:\t   2048 kB\nVmRSS:\t    1024 kB\nThreads:\t3\n")
	m, err := parseStatus(b)
	if err != nil || m.PeakRSS != 2048*1024 || m.RSS != 1024*1024 {
		t.Fatalf("%+v %v", m, err)
	}
	for _, bad := range []string{"VmHWM: 12 MB\nVmRSS: 1 kB\n", "VmRSS: 1 kB\n", "VmHWM: x kB\nVmRSS: 1 kB\n"} {
		if _, err := parseStatus([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if _, err := os.Stat("/proc/self/status"); err == nil {
		m, err := ReadMemory()
		if err != nil || m.PeakRSS < m.RSS || m.RSS <= 0 {
			t.Errorf("ReadMemory %+v %v", m, err)
		}
	}
}

func TestProfilerAggregates(t *testing.T) {
	conv1 := &graph.Node{Name: "c1", OpType: "Conv"}
	conv2 := &graph.Node{Name: "c2", OpType: "Conv"}
	relu := &graph.Node{OpType: "Relu"}
	fused := &graph.Node{Name: "f", OpType: "FusedConv", Domain: "com.microsoft"}
	nested := &graph.Node{Name: "inner", OpType: "Add"}
	g := &graph.Graph{Nodes: []*graph.Node{conv1, relu, conv2, fused}}
	p := NewProfiler(g)
	p.Record(conv1, time.Hour) // before Start: warm-up, ignored
	p.EndRun()
	p.Start()
	for run := 0; run < 2; run++ {
		p.Record(conv1, 3*time.Millisecond)
		p.Record(relu, 1*time.Millisecond)
		p.Record(conv2, 5*time.Millisecond)
		p.Record(fused, 1*time.Millisecond)
		p.Record(nested, 50*time.Millisecond) // inside a subgraph: ignored
		p.EndRun()
	}
	r := p.Report(2)
	if r.Runs != 2 || math.Abs(r.NodeMsTotal-10) > 1e-9 {
		t.Fatalf("runs %d total %g", r.Runs, r.NodeMsTotal)
	}
	want := []OpTime{{"Conv", 2, 8, 80}, {"Relu", 1, 1, 10}, {"com.microsoft.FusedConv", 1, 1, 10}}
	if len(r.ByOp) != len(want) {
		t.Fatalf("%+v", r.ByOp)
	}
	for i, w := range want {
		g := r.ByOp[i]
		if g.Op != w.Op || g.Nodes != w.Nodes || math.Abs(g.MsPerRun-w.MsPerRun) > 1e-9 || math.Abs(g.Percent-w.Percent) > 1e-9 {
			t.Errorf("op %d: %+v, want %+v", i, g, w)
		}
	}
	if len(r.TopNodes) != 2 || r.TopNodes[0].Node != "c2" || r.TopNodes[1].Node != "c1" || math.Abs(r.TopNodes[0].Percent-50) > 1e-9 {
		t.Errorf("top nodes %+v", r.TopNodes)
	}
	r = p.Report(0)
	if r.TopNodes[2].Node != "#1" && r.TopNodes[3].Node != "#1" {
		t.Errorf("an unnamed node should be named by its index: %+v", r.TopNodes)
	}
}

// The float pattern is tools/peers/ort.js's filler, so qtool and ONNX
// Runtime time identical inputs; the values are what node printed for it.
func TestSynthInputMatchesOrtFiller(t *testing.T) {
	v := &graph.Value{Name: "x", DType: tensor.Float32, Shape: graph.Shape{{Param: "N"}, {Value: 2}, {Param: "H"}, {Value: 2}}}
	x, err := SynthInput(v, Synth{Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !tensor.SameShape(x.Shape, []int{3, 2, 1, 2}) {
		t.Fatalf("shape %v", x.Shape)
	}
	wantF := []float32{0.6551539897918701, 0.30481433868408203, -0.36751651763916016, -0.004118919372558594}
	for i, w := range wantF {
		if x.F32()[i] != w {
			t.Errorf("float %d: %v, want %v", i, x.F32()[i], w)
		}
	}
	u, err := SynthInput(&graph.Value{Name: "u", DType: tensor.Uint8, Shape: graph.KnownShape(4)}, Synth{Batch: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := u.U8(); got[0] != 211 || got[1] != 166 || got[2] != 80 || got[3] != 126 {
		t.Errorf("uint8 %v", got)
	}
	i8, _ := SynthInput(&graph.Value{Name: "s", DType: tensor.Int8, Shape: graph.KnownShape(2)}, Synth{Batch: 1})
	if got := i8.I8(); got[0] != int8(-45) || got[1] != int8(-90) {
		t.Errorf("int8 %v (ort.js's Int8Array wraps 211 to -45)", got)
	}
	ids, _ := SynthInput(&graph.Value{Name: "ids", DType: tensor.Int64, Shape: graph.Shape{{Param: "B"}, {Param: "T"}}}, Synth{Batch: 2})
	if !tensor.SameShape(ids.Shape, []int{2, 1}) || ids.I64()[0] != 0 || ids.I64()[1] != 0 {
		t.Errorf("int64 %v %v", ids.Shape, ids.I64())
	}
}

func TestSynthInputRejects(t *testing.T) {
	for _, v := range []*graph.Value{
		{Name: "norank", DType: tensor.Float32},
		{Name: "str", DType: tensor.String, Shape: graph.KnownShape(1)},
		{Name: "nodtype", Shape: graph.KnownShape(1)},
		{Name: "huge", DType: tensor.Float32, Shape: graph.KnownShape(1<<20, 1<<20)},
	} {
		if _, err := SynthInput(v, Synth{Batch: 1}); err == nil || !strings.Contains(err.Error(), v.Name) {
			t.Errorf("%s: err %v", v.Name, err)
		}
	}
}

func TestSynthDimsAndValues(t *testing.T) {
	s := Synth{Batch: 4, Dims: map[string]int{"sequence": 512, "batch": 2}, Values: map[string]float64{"sr": 16000, "x": 0.5}}
	in, err := SynthInput(&graph.Value{Name: "input", DType: tensor.Float32, Shape: graph.Shape{{Param: "batch"}, {Param: "sequence"}, {Param: "other"}, {Value: -1}}}, s)
	if err != nil || !tensor.SameShape(in.Shape, []int{2, 512, 1, 1}) {
		t.Fatalf("%v %v", in, err)
	}
	in, err = SynthInput(&graph.Value{Name: "input", DType: tensor.Float32, Shape: graph.Shape{{Param: "N"}, {Param: "sequence"}}}, s)
	if err != nil || !tensor.SameShape(in.Shape, []int{4, 512}) {
		t.Fatalf("an unnamed first dim takes Batch: %v %v", in, err)
	}
	sr, err := SynthInput(&graph.Value{Name: "sr", DType: tensor.Int64, Shape: graph.Shape{}}, s)
	if err != nil || len(sr.Shape) != 0 || sr.I64()[0] != 16000 {
		t.Fatalf("sr %v %v", sr, err)
	}
	x, err := SynthInput(&graph.Value{Name: "x", DType: tensor.Float16, Shape: graph.KnownShape(3)}, s)
	if err != nil || x.F16()[2].Float32() != 0.5 {
		t.Fatalf("x %v %v", x, err)
	}
	for _, c := range []struct {
		dt tensor.DType
		x  float64
	}{{tensor.Uint8, 256}, {tensor.Int8, -129}, {tensor.Int32, 1.5}, {tensor.Int64, math.NaN()}, {tensor.Bool, 2}} {
		_, err := SynthInput(&graph.Value{Name: "v", DType: c.dt, Shape: graph.KnownShape(1)}, Synth{Batch: 1, Values: map[string]float64{"v": c.x}})
		if err == nil {
			t.Errorf("%v = %g: no error", c.dt, c.x)
		}
	}
	b, err := SynthInput(&graph.Value{Name: "v", DType: tensor.Bool, Shape: graph.KnownShape(1)}, Synth{Batch: 1, Values: map[string]float64{"v": 1}})
	if err != nil || !b.Bools()[0] {
		t.Errorf("bool %v %v", b, err)
	}
	// "batch" leads the first input, so the state's "batch" in position 1
	// takes --batch too.
	g := &graph.Graph{Inputs: []*graph.Value{
		{Name: "input", DType: tensor.Float32, Shape: graph.Shape{{Param: "batch"}, {Param: "sequence"}}},
		{Name: "state", DType: tensor.Float32, Shape: graph.Shape{{Value: 2}, {Param: "batch"}, {Value: 128}}},
	}}
	feeds, err := Inputs(g, nil, Synth{Batch: 3, Dims: map[string]int{"sequence": 64}})
	if err != nil || !tensor.SameShape(feeds["input"].Shape, []int{3, 64}) || !tensor.SameShape(feeds["state"].Shape, []int{2, 3, 128}) {
		t.Fatalf("%v %v", feeds, err)
	}
	if g := guessedDims(g, nil, Synth{Batch: 3, Dims: map[string]int{"sequence": 64}}); len(g) != 2 || g[1] != "state dim 1 (batch) = 3" {
		t.Errorf("guessed %q", g)
	}
	for _, bad := range []Synth{
		{Batch: 1, Dims: map[string]int{"seqence": 5}},
		{Batch: 1, Values: map[string]float64{"nosuch": 1}},
	} {
		if _, err := Inputs(g, nil, bad); err == nil {
			t.Errorf("%+v: unknown name accepted", bad)
		}
	}
	if _, err := Inputs(g, map[string]*tensor.Tensor{"state": tensor.MustNew(tensor.Float32, []int{2, 1, 128})}, Synth{Batch: 1, Values: map[string]float64{"state": 1}}); err == nil {
		t.Error("an input both given and filled was accepted")
	}
	if _, err := Inputs(&graph.Graph{}, nil, Synth{Batch: 1, Dims: map[string]int{"n": -1}}); err == nil {
		t.Error("negative dim accepted")
	}
}

func mnist(t *testing.T) *model.Model {
	t.Helper()
	m, err := model.Load(filepath.Join("..", "..", "examples", "mnist", "mnist-8.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRunMNISTTwoModels(t *testing.T) {
	a, b := mnist(t), mnist(t)
	rep, err := Run([]Model{{Path: "a.onnx", Graph: a.Graph}, {Path: "b.onnx", Graph: b.Graph}},
		Config{Threads: 1, Batch: 1, Profile: true, Timing: Options{Warmup: 1, Runs: 4}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Models) != 2 || rep.Comparison == nil {
		t.Fatalf("%+v", rep)
	}
	for _, m := range rep.Models {
		if m.Runs != 4 || m.LatencyMs.N != 4 || m.LatencyMs.P50 <= 0 || m.Throughput <= 0 || m.PeakActivationBytes <= 0 {
			t.Errorf("%+v", m)
		}
		if m.Profile == nil || m.Profile.Runs != 4 || len(m.Profile.ByOp) == 0 {
			t.Errorf("profile %+v", m.Profile)
		}
		var pct float64
		for _, o := range m.Profile.ByOp {
			pct += o.Percent
		}
		if math.Abs(pct-100) > 1e-6 {
			t.Errorf("op shares add up to %g%%", pct)
		}
		if len(m.Inputs) != 1 || m.Inputs[0].Source != "synthetic" || !tensor.SameShape(m.Inputs[0].Shape, []int{1, 1, 28, 28}) {
			t.Errorf("inputs %+v", m.Inputs)
		}
	}
	c := rep.Comparison
	if math.Abs(c.LatencyRatio*c.Speedup-1) > 1e-9 || math.Abs(c.LatencyRatio-rep.Models[1].LatencyMs.P50/rep.Models[0].LatencyMs.P50) > 1e-12 {
		t.Errorf("comparison %+v", c)
	}
	var sb strings.Builder
	if err := rep.WriteText(&sb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"b.onnx vs a.onnx: latency ratio", "profile of a.onnx", "Conv"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, sb.String())
		}
	}
}

func TestRunInputErrors(t *testing.T) {
	m := mnist(t)
	name := m.Graph.Inputs[0].Name
	for what, given := range map[string]map[string]*tensor.Tensor{
		"wrong shape": {name: tensor.MustNew(tensor.Float32, []int{1, 1, 28, 27})},
		"wrong dtype": {name: tensor.MustNew(tensor.Int64, []int{1, 1, 28, 28})},
		"wrong rank":  {name: tensor.MustNew(tensor.Float32, []int{28, 28})},
		"no such":     {"nosuch": tensor.MustNew(tensor.Float32, []int{1})},
	} {
		_, err := Run([]Model{{Path: "m.onnx", Graph: m.Graph, Given: given}}, Config{Batch: 1, Timing: Options{Runs: 1}})
		if !IsInputError(err) {
			t.Errorf("%s: %v is not an input error", what, err)
		}
		// With the file known, the error leads with it: that is what
		// the user has to fix.
		src := map[string]string{}
		for n := range given {
			src[n] = "x_in.npy"
		}
		_, err = Run([]Model{{Path: "m.onnx", Graph: m.Graph, Given: given, Sources: src}}, Config{Batch: 1, Timing: Options{Runs: 1}})
		if !IsInputError(err) || !strings.HasPrefix(err.Error(), "x_in.npy: ") || !strings.Contains(err.Error(), "m.onnx") {
			t.Errorf("%s with a source file: %v", what, err)
		}
	}
	if _, err := Run([]Model{{Path: "m.onnx", Graph: m.Graph}}, Config{Batch: 0}); !IsInputError(err) {
		t.Errorf("batch 0: %v", err)
	}
	if _, err := Run(nil, Config{Batch: 1}); !IsInputError(err) {
		t.Errorf("no models: %v", err)
	}
}

func TestBytes(t *testing.T) {
	for b, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 3 << 30: "3.0 GiB"} {
		if got := Bytes(b); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", b, got, want)
		}
	}
}
