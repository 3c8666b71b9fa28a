package nn

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// plan is a graph prepared for repeated runs by the test mini-executor: one
// kernel per node, created once (so constant weights are packed once).
type plan struct {
	g       *graph.Graph
	kernels []runtime.Kernel
	times   []float64 // per-node seconds, accumulated when timing
}

func newPlan(g *graph.Graph) (*plan, error) {
	p := &plan{g: g, kernels: make([]runtime.Kernel, len(g.Nodes)), times: make([]float64, len(g.Nodes))}
	for i, n := range g.Nodes {
		if n.OpType == "Constant" || n.OpType == "Identity" || isShim(n.OpType) {
			continue
		}
		dt := tensor.Undefined
		if v := n.Input(0); v != nil {
			dt = v.DType
			if v.Const != nil {
				dt = v.Const.DType
			}
		}
		if dt == tensor.Undefined {
			dt = tensor.Float32 // intermediate values carry no type here
		}
		f, ok := runtime.Lookup(n.Domain, n.OpType, dt)
		if !ok {
			return nil, &runtime.ErrUnsupported{Node: n, DType: dt}
		}
		k, err := f(n, g.Opset(n.Domain))
		if err != nil {
			return nil, err
		}
		p.kernels[i] = k
	}
	return p, nil
}

// runGraph executes a graph node by node with this package's kernels (and
// Constant/Identity inline, plus the test shims), so the node tests run
// without the executor.
func runGraph(g *graph.Graph, inputs map[string]*tensor.Tensor, threads int) (map[string]*tensor.Tensor, error) {
	p, err := newPlan(g)
	if err != nil {
		return nil, err
	}
	return p.run(inputs, threads, false)
}

func (p *plan) run(inputs map[string]*tensor.Tensor, threads int, timed bool) (map[string]*tensor.Tensor, error) {
	g := p.g
	env := map[string]*tensor.Tensor{}
	for _, v := range g.Initializers {
		env[v.Name] = v.Const
	}
	for k, v := range inputs {
		env[k] = v
	}
	ctx := &runtime.Context{Threads: threads}
	for ni, n := range g.Nodes {
		in := make([]*tensor.Tensor, len(n.Inputs))
		for i, v := range n.Inputs {
			if v == nil {
				continue
			}
			t, ok := env[v.Name]
			if !ok {
				return nil, fmt.Errorf("%v: input %q not computed", n, v.Name)
			}
			in[i] = t
		}
		var start time.Time
		if timed {
			start = time.Now()
		}
		var outs []*tensor.Tensor
		switch {
		case n.OpType == "Constant":
			t, err := n.AttrTensor("value")
			if err != nil || t == nil {
				return nil, fmt.Errorf("%v: unsupported Constant", n)
			}
			outs = []*tensor.Tensor{t}
		case n.OpType == "Identity":
			outs = in
		case isShim(n.OpType):
			o, _, err := shimOp(n, in)
			if err != nil {
				return nil, err
			}
			outs = o
		default:
			var err error
			if outs, err = p.kernels[ni].Run(ctx, in); err != nil {
				return nil, err
			}
		}
		if timed {
			p.times[ni] += time.Since(start).Seconds()
		}
		for i, v := range n.Outputs {
			if v != nil && i < len(outs) && outs[i] != nil {
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

// runNodeTest runs one ONNX backend test folder and compares at the ONNX
// runner's tolerance (rtol 1e-3, atol 1e-7).
func runNodeTest(dir string, threads int) error {
	m, err := model.Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return err
	}
	sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	if len(sets) == 0 {
		return fmt.Errorf("no test data sets")
	}
	for _, set := range sets {
		inputs := map[string]*tensor.Tensor{}
		var ins []*graph.Value
		for _, v := range m.Graph.Inputs {
			isInit := false
			for _, iv := range m.Graph.Initializers {
				if iv.Name == v.Name {
					isInit = true
				}
			}
			if !isInit {
				ins = append(ins, v)
			}
		}
		for i, v := range ins {
			p := filepath.Join(set, fmt.Sprintf("input_%d.pb", i))
			if _, err := os.Stat(p); err != nil {
				continue
			}
			t, err := model.ReadTensorFile(p)
			if err != nil {
				return err
			}
			inputs[v.Name] = t
		}
		got, err := runGraph(m.Graph, inputs, threads)
		if err != nil {
			return err
		}
		for i, v := range m.Graph.Outputs {
			want, err := model.ReadTensorFile(filepath.Join(set, fmt.Sprintf("output_%d.pb", i)))
			if err != nil {
				return err
			}
			if err := compare(got[v.Name], want); err != nil {
				return fmt.Errorf("%s output %q: %v", filepath.Base(set), v.Name, err)
			}
		}
	}
	return nil
}

func compare(got, want *tensor.Tensor) error {
	if got == nil {
		return fmt.Errorf("not produced")
	}
	if !tensor.SameShape(got.Shape, want.Shape) && !(got.Len() == 1 && want.Len() == 1) {
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
	if len(g) != len(w) {
		return fmt.Errorf("%d values, want %d", len(g), len(w))
	}
	bad := 0
	first := ""
	for i := range g {
		if math.IsNaN(w[i]) && math.IsNaN(g[i]) {
			continue
		}
		if math.Abs(g[i]-w[i]) > 1e-7+1e-3*math.Abs(w[i]) || math.IsNaN(g[i]) != math.IsNaN(w[i]) {
			if bad == 0 {
				first = fmt.Sprintf("[%d] got %g want %g", i, g[i], w[i])
			}
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d values differ, first %s", bad, len(g), first)
	}
	return nil
}

func nodeDirs(t *testing.T, patterns ...string) []string {
	var out []string
	roots := []string{"../../../../../shared/onnx-node", "/usr/share/libonnx-testdata/data/node", "/usr/share/libonnx-testdata/data/pytorch-converted", "/usr/share/libonnx-testdata/data/pytorch-operator"}
	seen := map[string]bool{}
	for _, r := range roots {
		for _, p := range patterns {
			m, _ := filepath.Glob(filepath.Join(r, p))
			for _, d := range m {
				if seen[d] {
					continue
				}
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	sort.Strings(out)
	return out
}

// nnTests are the node-test folders of this package's ops.
var nnTests = []string{
	"test_*conv*", "test_Conv*", "test_*pool*", "test_*Pool*", "test_*norm*", "test_*Norm*",
	"test_gemm*", "test_matmul*", "test_Linear*", "test_operator_mm", "test_operator_addmm",
	"test_operator_conv*", "test_operator_maxpool", "test_*pad*", "test_*Pad*", "test_operator_pad",
	"test_resize*", "test_upsample*", "test_lstm*", "test_gru*", "test_rnn*", "test_simple_rnn*",
}

// TestNodeTests runs this package's node tests with its own mini-executor.
// A test that needs a kernel from another package (Cast, Unsqueeze, ...)
// or an op that is listed unsupported is reported, not failed; any wrong
// value or error from our kernels fails. NN_NODE overrides the patterns.
func TestNodeTests(t *testing.T) {
	pats := nnTests
	if p := os.Getenv("NN_NODE"); p != "" {
		pats = strings.Split(p, ",")
	}
	pass, fail, skip := 0, 0, 0
	for _, d := range nodeDirs(t, pats...) {
		err := runNodeTest(d, 1+pass%3)
		var unsup *runtime.ErrUnsupported
		switch {
		case err == nil:
			pass++
		case errors.As(err, &unsup):
			skip++
			t.Logf("%s: %v", filepath.Base(d), err)
		default:
			fail++
			t.Errorf("%s: %v", d, err)
		}
	}
	t.Logf("pass %d fail %d skipped (no kernel) %d", pass, fail, skip)
}
