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
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/npy"
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
		RunOptions{Threads: r.threads}, DatasetInfo{Limit: r.opts.Limit, Shuffle: r.opts.Shuffle, Seed: r.opts.Seed})
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
