package qlinear

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/runtime/nodetest"
	"github.com/qtool/qtool/internal/simd/q8"
	"github.com/qtool/qtool/internal/tensor"
)

// The node tests run here through a minimal node-by-node executor (this
// package's kernels only), so they exercise every q8 path in one process:
// q8.SetISA switches the path before the kernels are built (weights are
// packed at build time).

func runGraph(g *graph.Graph, inputs map[string]*tensor.Tensor, threads int) (map[string]*tensor.Tensor, error) {
	env := map[string]*tensor.Tensor{}
	for _, v := range g.Initializers {
		env[v.Name] = v.Const
	}
	for k, v := range inputs {
		env[k] = v
	}
	ctx := &runtime.Context{Threads: threads}
	for _, n := range g.Nodes {
		in := make([]*tensor.Tensor, len(n.Inputs))
		dt := tensor.Undefined
		for i, v := range n.Inputs {
			if v == nil {
				continue
			}
			t, ok := env[v.Name]
			if !ok {
				return nil, fmt.Errorf("%v: input %q not computed", n, v.Name)
			}
			in[i] = t
			if i == 0 {
				dt = t.DType
			}
		}
		f, ok := runtime.Lookup(n.Domain, n.OpType, dt)
		if !ok {
			return nil, &runtime.ErrUnsupported{Node: n, DType: dt}
		}
		k, err := f(n, g.Opset(n.Domain))
		if err != nil {
			return nil, err
		}
		outs, err := k.Run(ctx, in)
		if err != nil {
			return nil, err
		}
		for i, v := range n.Outputs {
			if v != nil && i < len(outs) {
				env[v.Name] = outs[i]
			}
		}
	}
	res := map[string]*tensor.Tensor{}
	for _, v := range g.Outputs {
		res[v.Name] = env[v.Name]
	}
	return res, nil
}

func runNodeTest(dir string, threads int) error {
	m, err := model.Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return err
	}
	sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	if len(sets) == 0 {
		return fmt.Errorf("no test data sets")
	}
	inits := map[string]bool{}
	for _, v := range m.Graph.Initializers {
		inits[v.Name] = true
	}
	var names []string
	for _, v := range m.Graph.Inputs {
		if !inits[v.Name] {
			names = append(names, v.Name)
		}
	}
	for _, set := range sets {
		inputs, err := nodetest.ReadInputs(set, names)
		if err != nil {
			return err
		}
		got, err := runGraph(m.Graph, inputs, threads)
		if err != nil {
			return err
		}
		for i, v := range m.Graph.Outputs {
			want, err := nodetest.ReadOutput(set, i)
			if err != nil {
				return err
			}
			if err := exactEqual(got[v.Name], want); err != nil {
				return fmt.Errorf("%s output %q: %v", filepath.Base(set), v.Name, err)
			}
		}
	}
	return nil
}

// exactEqual compares integer tensors element for element.
func exactEqual(got, want *tensor.Tensor) error {
	if got == nil {
		return fmt.Errorf("not produced")
	}
	if !tensor.SameShape(got.Shape, want.Shape) {
		return fmt.Errorf("shape %v, want %v", got.Shape, want.Shape)
	}
	if got.DType != want.DType {
		return fmt.Errorf("dtype %v, want %v", got.DType, want.DType)
	}
	g, err := got.AsFloat64()
	if err != nil {
		return err
	}
	w, _ := want.AsFloat64()
	bad, first := 0, ""
	for i := range g {
		if g[i] != w[i] {
			if bad == 0 {
				first = fmt.Sprintf("[%d] got %v want %v", i, g[i], w[i])
			}
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d values differ, first %s", bad, len(g), first)
	}
	return nil
}

// nodeDirs finds the test folders: ../shared/onnx-node above the repo and
// Debian's libonnx-testdata.
func nodeDirs(patterns ...string) []string {
	var roots []string
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if st, err := os.Stat(filepath.Join(d, "shared", "onnx-node")); err == nil && st.IsDir() {
				roots = append(roots, filepath.Join(d, "shared", "onnx-node"))
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	roots = append(roots, "/usr/share/libonnx-testdata/data/node")
	var out []string
	for _, r := range roots {
		for _, p := range patterns {
			m, _ := filepath.Glob(filepath.Join(r, p))
			out = append(out, m...)
		}
	}
	sort.Strings(out)
	return out
}

var qlinearTests = []string{"test_qlinearconv*", "test_qlinearmatmul*", "test_convinteger*", "test_basic_convinteger*", "test_matmulinteger*"}

// TestNodeTests runs every QLinearConv, QLinearMatMul, ConvInteger and
// MatMulInteger node test exactly, on every q8 path, with 1 and 2 threads.
func TestNodeTests(t *testing.T) {
	dirs := nodeDirs(qlinearTests...)
	if len(dirs) == 0 {
		t.Skip("no ONNX node tests found (../shared/onnx-node, libonnx-testdata)")
	}
	old := q8.ISA()
	defer q8.SetISA(old)
	for _, isa := range q8.ISAs() {
		if err := q8.SetISA(isa); err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs {
			for _, threads := range []int{1, 2} {
				if err := runNodeTest(d, threads); err != nil {
					t.Errorf("%s [%s, %d threads]: %v", d, isa, threads, err)
				}
			}
		}
	}
	t.Logf("%d node tests on paths %v", len(dirs), q8.ISAs())
}

// TestORTGoldens runs the cases of testdata/gen_ort.py (outputs computed by
// ONNX Runtime) exactly, on every q8 path, with 1 and 3 threads.
func TestORTGoldens(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/ort/*")
	if len(dirs) == 0 {
		t.Fatal("testdata/ort is empty: run testdata/gen_ort.py")
	}
	old := q8.ISA()
	defer q8.SetISA(old)
	for _, isa := range q8.ISAs() {
		if err := q8.SetISA(isa); err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs {
			for _, threads := range []int{1, 3} {
				if err := runNodeTest(d, threads); err != nil {
					t.Errorf("%s [%s, %d threads]: %v", filepath.Base(d), isa, threads, err)
				}
			}
		}
	}
}

// TestSessionNodeTests runs the same folders (ONNX node tests and the ONNX
// Runtime goldens) through the real executor (runtime.Session via
// nodetest.Check), on every q8 path: the path in use when the session is
// built is the one its prepacked weights use.
func TestSessionNodeTests(t *testing.T) {
	dirs := append(nodeDirs(qlinearTests...), mustGlob(t, "testdata/ort/*")...)
	old := q8.ISA()
	defer q8.SetISA(old)
	for _, isa := range q8.ISAs() {
		if err := q8.SetISA(isa); err != nil {
			t.Fatal(err)
		}
		for i, d := range dirs {
			if err := nodetest.Check(d, 1+i%2); err != nil {
				t.Errorf("%s [%s]: %v", filepath.Base(d), isa, err)
			}
		}
	}
}

func mustGlob(t *testing.T, pattern string) []string {
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) == 0 {
		t.Fatalf("%s: no match", pattern)
	}
	return m
}
