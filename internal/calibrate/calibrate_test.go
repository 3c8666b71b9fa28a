package calibrate

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/observe"
	_ "github.com/qtool/qtool/internal/runtime/ops/basic"
	_ "github.com/qtool/qtool/internal/runtime/ops/nn"
	"github.com/qtool/qtool/internal/tensor"
)

// shared finds ../shared (models and data) from the test's folder.
func shared(t testing.TB, rel string) string {
	t.Helper()
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "shared", rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		p = filepath.Join(d, "..", "shared", rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		if filepath.Dir(d) == d {
			t.Skipf("%s not found above %s", rel, dir)
		}
	}
}

// mnistNPY writes the first n MNIST test digits as raw 0..255 float32
// [n, 1, 28, 28] to a temporary .npy.
func mnistNPY(t testing.TB, n int) string {
	t.Helper()
	f, err := os.Open(shared(t, "data/mnist/t10k-images-idx3-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var hdr [4]uint32
	if err := binary.Read(zr, binary.BigEndian, &hdr); err != nil {
		t.Fatal(err)
	}
	if hdr[0] != 2051 || hdr[2] != 28 || hdr[3] != 28 || int(hdr[1]) < n {
		t.Fatalf("unexpected IDX header %v", hdr)
	}
	raw := make([]byte, n*28*28)
	if _, err := io.ReadFull(zr, raw); err != nil {
		t.Fatal(err)
	}
	data := make([]float32, len(raw))
	for i, b := range raw {
		data[i] = float32(b)
	}
	return writeNPY(t, tensor.FromFloat32([]int{n, 1, 28, 28}, data))
}

func writeNPY(t testing.TB, x *tensor.Tensor) string {
	t.Helper()
	var b bytes.Buffer
	if err := npy.Write(&b, x); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "data.npy")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type calibRun struct {
	modelPath string
	specs     []DataSpec
	opts      Options
	cfg       Config
	kind      string
	threads   int
}

func (r calibRun) run(t testing.TB) *Table {
	t.Helper()
	tab, err := r.try(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func (r calibRun) try(ctx context.Context) (*Table, error) {
	m, err := model.Load(r.modelPath)
	if err != nil {
		return nil, err
	}
	ds, err := Open(r.specs, InputSpecs(m.Graph), r.opts)
	if err != nil {
		return nil, err
	}
	defer ds.Close()
	sum, err := FileSHA256(r.modelPath)
	if err != nil {
		return nil, err
	}
	return Calibrate(ctx, m.Graph, ModelInfo{Path: r.modelPath, SHA256: sum}, ds, r.cfg, r.kind,
		RunOptions{Threads: r.threads}, DatasetInfo{Limit: r.opts.Limit, Offset: r.opts.Offset, Shuffle: r.opts.Shuffle, Seed: r.opts.Seed})
}

// checkComplete asserts that every float activation (graph input and node
// output) and every weight of g has an entry with finite, positive scales
// and zero points inside the dtype's range.
func checkComplete(t *testing.T, g *graph.Graph, tab *Table) {
	t.Helper()
	if err := tab.Validate(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, v := range g.Inputs {
		if v.DType == tensor.Float32 {
			want[v.Name] = RoleActivation
		}
	}
	for _, n := range g.Nodes {
		for i, v := range n.Inputs {
			if v != nil && v.Const != nil {
				if w, _ := weightAxis(n, i); w {
					want[v.Name] = RoleWeight
				}
			}
		}
		for _, v := range n.Outputs {
			if v != nil && v.DType == tensor.Float32 {
				want[v.Name] = RoleActivation
			}
		}
	}
	if len(want) < 5 {
		t.Fatalf("only %d float tensors in the model: the shape inference did not run?", len(want))
	}
	for name, role := range want {
		e := tab.Lookup(name)
		if e == nil {
			t.Errorf("tensor %q (%s) missing from the table", name, role)
			continue
		}
		if e.Role != role {
			t.Errorf("tensor %q: role %s, want %s", name, e.Role, role)
		}
		if len(e.Scales) == 0 {
			t.Errorf("tensor %q: no scales", name)
		}
		for i, s := range e.Scales {
			if !(s > 0) || math.IsInf(float64(s), 0) {
				t.Errorf("tensor %q: scale[%d] = %v", name, i, s)
			}
		}
	}
}

func TestMNISTCalibration(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	data := mnistNPY(t, n)
	mp := shared(t, "models/mnist-8/mnist-8.onnx")
	whole := calibRun{modelPath: mp, specs: []DataSpec{{Path: data}}}
	tab := whole.run(t)
	m, err := model.Load(mp)
	if err != nil {
		t.Fatal(err)
	}
	checkComplete(t, m.Graph, tab)
	if tab.Dataset.Samples != n || tab.Dataset.BatchSize != 1 {
		t.Fatalf("dataset %+v", tab.Dataset)
	}
	// The graph input's histogram range is the data's: 0..255.
	in := tab.Lookup(m.Graph.Inputs[0].Name)
	if in.Observer.Min[0] != 0 || in.Observer.Max[0] != 255 {
		t.Fatalf("input range [%v, %v], want [0, 255]", in.Observer.Min[0], in.Observer.Max[0])
	}
	t.Logf("%d tensors", len(tab.Tensors))
}

// sameEntries compares two tables' tensors: names, roles, observer kinds
// and, exactly, qparams and min/max statistics.
func sameMinMaxEntries(t *testing.T, got, want *Table) {
	t.Helper()
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("%d tensors, want %d", len(got.Tensors), len(want.Tensors))
	}
	for i, w := range want.Tensors {
		g := got.Tensors[i]
		if g.Name != w.Name || g.Role != w.Role || g.Observer.Kind != w.Observer.Kind {
			t.Fatalf("tensor %d: %s/%s/%s, want %s/%s/%s", i, g.Name, g.Role, g.Observer.Kind, w.Name, w.Role, w.Observer.Kind)
		}
		if !f32sEqual(g.Scales, w.Scales) || !reflect.DeepEqual(g.ZeroPoints, w.ZeroPoints) ||
			!f32sEqual(g.Observer.Min, w.Observer.Min) || !f32sEqual(g.Observer.Max, w.Observer.Max) {
			t.Errorf("tensor %q: merged scales %v zp %v range [%v, %v], whole %v %v [%v, %v]", w.Name,
				g.Scales, g.ZeroPoints, g.Observer.Min, g.Observer.Max, w.Scales, w.ZeroPoints, w.Observer.Min, w.Observer.Max)
		}
	}
}

func f32sEqual(a, b []observe.F32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(float32(a[i])) != math.Float32bits(float32(b[i])) {
			return false
		}
	}
	return true
}

// Two processes calibrating the two halves of the data and merging their
// tables get exactly the MinMax table of one run over all of it.
func TestMNISTMergeHalvesMinMax(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	data := mnistNPY(t, n)
	mp := shared(t, "models/mnist-8/mnist-8.onnx")
	run := func(off, lim int) *Table {
		return calibRun{modelPath: mp, specs: []DataSpec{{Path: data}}, kind: "minmax",
			opts: Options{Offset: off, Limit: lim, Batch: 1}}.run(t)
	}
	whole := run(0, 0)
	a, b := run(0, n/2), run(n/2, 0)
	if a.Dataset.Samples != n/2 || b.Dataset.Samples != n-n/2 {
		t.Fatalf("halves of %d and %d samples", a.Dataset.Samples, b.Dataset.Samples)
	}
	merged, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if merged.Dataset.Samples != n || len(merged.Dataset.Parts) != 2 {
		t.Fatalf("merged dataset %+v", merged.Dataset)
	}
	sameMinMaxEntries(t, merged, whole)
	// The halves differ from the whole somewhere, or the test proves nothing.
	differs := false
	for i, e := range a.Tensors {
		if !f32sEqual(e.Scales, whole.Tensors[i].Scales) {
			differs = true
		}
	}
	if !differs {
		t.Fatal("the first half alone already gives the whole table")
	}
}

func cifarRun(t testing.TB, n, off, lim int, kind string, threads, batch int) calibRun {
	return calibRun{
		modelPath: shared(t, "models/squeezenet-cifar10/squeezenet_cifar10.onnx"),
		specs:     []DataSpec{{Path: shared(t, "data/cifar10/cifar10-test-jpg.tar")}},
		opts: Options{Limit: lim, Offset: off, Shuffle: true, Seed: 7, Batch: batch,
			Preprocess: &Preprocess{Divisor: 256}},
		kind:    kind,
		threads: threads,
	}
}

// CIFAR-10 JPEGs straight from the tar, a shuffled subset, NHWC pixels/256.
// MinMax tables of two halves merge into exactly the whole table; histogram
// tables merge into the union range with all the mass of both; the table
// does not depend on the thread count.
func TestSqueezeNetCIFAR(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 200
	}
	r := cifarRun(t, n, 0, n, "", 1, 50)
	whole := r.run(t)
	m, err := model.Load(r.modelPath)
	if err != nil {
		t.Fatal(err)
	}
	checkComplete(t, m.Graph, whole)
	if whole.Dataset.Samples != n {
		t.Fatalf("%d samples", whole.Dataset.Samples)
	}
	in := whole.Lookup("input_1")
	if in == nil || in.Observer.Min[0] < 0 || in.Observer.Max[0] >= 1 || in.Observer.Max[0] < 0.9 {
		t.Fatalf("input range %+v, want within [0, 255/256]", in)
	}

	// Histograms: merged range is the union, mass is conserved, and the
	// scale stays near the whole run's (torch's streaming histogram itself
	// moves scales by up to ~20% when the same data is batched differently,
	// so this bound only catches gross errors).
	a := cifarRun(t, n, 0, n/2, "", 2, 50).run(t)
	b := cifarRun(t, n, n/2, n/2, "", 2, 50).run(t)
	merged, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(merged.Tensors) != len(whole.Tensors) {
		t.Fatalf("%d merged tensors, %d whole", len(merged.Tensors), len(whole.Tensors))
	}
	mass := func(e *Entry) float64 {
		var s float64
		for _, v := range e.Observer.Histogram {
			s += float64(v)
		}
		return s
	}
	for i, w := range whole.Tensors {
		g, ea, eb := merged.Tensors[i], a.Tensors[i], b.Tensors[i]
		if g.Name != w.Name || ea.Name != w.Name || eb.Name != w.Name {
			t.Fatalf("tensor %d: %s, want %s", i, g.Name, w.Name)
		}
		if w.Role != RoleActivation {
			sameMinMaxEntries(t, &Table{Tensors: []*Entry{g}}, &Table{Tensors: []*Entry{w}})
			continue
		}
		lo := min(ea.Observer.Min[0], eb.Observer.Min[0])
		hi := max(ea.Observer.Max[0], eb.Observer.Max[0])
		if g.Observer.Min[0] != lo || g.Observer.Max[0] != hi {
			t.Errorf("tensor %q: merged range [%v, %v], want the union [%v, %v]", w.Name, g.Observer.Min[0], g.Observer.Max[0], lo, hi)
		}
		if got, want := mass(g), mass(ea)+mass(eb); math.Abs(got-want) > 1e-4*want {
			t.Errorf("tensor %q: merged histogram holds %v, the halves %v", w.Name, got, want)
		}
		if gs, ws := float64(g.Scales[0]), float64(w.Scales[0]); math.Abs(gs-ws) > 0.25*ws {
			t.Errorf("tensor %q: merged scale %v, whole %v", w.Name, gs, ws)
		}
	}

	// MinMax: exactly the whole table.
	mmWhole := cifarRun(t, n, 0, n, "minmax", 1, 50).run(t)
	mmA := cifarRun(t, n, 0, n/2, "minmax", 1, 50).run(t)
	mmB := cifarRun(t, n, n/2, n/2, "minmax", 1, 50).run(t)
	mmMerged, err := Merge(mmA, mmB)
	if err != nil {
		t.Fatal(err)
	}
	sameMinMaxEntries(t, mmMerged, mmWhole)

	// Thread count does not change a byte.
	wb, _ := whole.Marshal()
	w2, _ := cifarRun(t, n, 0, n, "", 2, 50).run(t).Marshal()
	if !bytes.Equal(wb, w2) {
		t.Fatal("tables at 1 and 2 threads differ")
	}
}

func tensorOf(shape []int, x []float32) *tensor.Tensor { return tensor.FromFloat32(shape, x) }

// A two-input graph fed from two files mapped by name in the config:
// both inputs, every node output and the constant operand are observed,
// with the values the data implies.
func TestMultiInputByName(t *testing.T) {
	f32 := func(name string) *graph.Value {
		return &graph.Value{Name: name, DType: tensor.Float32, Shape: graph.Shape{{Value: -1, Param: "N"}, {Value: 3}}}
	}
	a, b, s, out := f32("a"), f32("b"), f32("s"), f32("out")
	c := &graph.Value{Name: "c", DType: tensor.Float32, Shape: graph.KnownShape(3), Const: tensor.FromFloat32([]int{3}, []float32{-1, 2, 0.5})}
	g := &graph.Graph{
		Inputs: []*graph.Value{a, b}, Outputs: []*graph.Value{out}, Initializers: []*graph.Value{c},
		Nodes: []*graph.Node{
			{Name: "add", OpType: "Add", Inputs: []*graph.Value{a, b}, Outputs: []*graph.Value{s}},
			{Name: "mul", OpType: "Mul", Inputs: []*graph.Value{s, c}, Outputs: []*graph.Value{out}},
		},
		Opsets: map[string]int64{"": 13},
	}
	pa := writeNPY(t, tensor.FromFloat32([]int{4, 3}, seq(12, func(i int) float32 { return float32(i) })))
	pb := writeNPY(t, tensor.FromFloat32([]int{4, 3}, seq(12, func(i int) float32 { return -2 })))
	cfg, err := DecodeConfig(map[string]any{
		"activation": map[string]any{"observer": "minmax"},
		"inputs":     []any{map[string]any{"input": "b", "path": pb}, map[string]any{"input": "a", "path": pa}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := Open(cfg.Inputs, InputSpecs(g), Options{Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	tab, err := Calibrate(context.Background(), g, ModelInfo{Path: "g.onnx", SHA256: strings.Repeat("ab", 32)}, ds, cfg, "", RunOptions{}, DatasetInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tab.Validate(); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]float32{"a": {0, 11}, "b": {-2, -2}, "s": {-2, 9}, "out": {-7, 16}, "c": {-1, 2}}
	for name, r := range want {
		e := tab.Lookup(name)
		if e == nil {
			t.Fatalf("%s missing", name)
		}
		if float32(e.Observer.Min[0]) != r[0] || float32(e.Observer.Max[0]) != r[1] {
			t.Errorf("%s: range [%v, %v], want %v", name, e.Observer.Min[0], e.Observer.Max[0], r)
		}
	}
	if e := tab.Lookup("c"); e.Role != RoleConstant || e.OpType != "Mul" {
		t.Errorf("c: role %s op %s", e.Role, e.OpType)
	}
	if tab.Dataset.Samples != 4 || tab.Dataset.Batches != 2 {
		t.Errorf("dataset %+v", tab.Dataset)
	}
}
