package runtime

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// Test kernels live in their own domain so that they never collide with the
// real ops packages.
const testDomain = "test.qtool"

func init() {
	// AddOne: y = x + 1 (float32), a fresh output each time.
	Register(testDomain, "AddOne", tensor.Float32, func(n *graph.Node, _ int64) (Kernel, error) {
		return KernelFunc(func(ctx *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			x := in[0].F32()
			y := make([]float32, len(x))
			ctx.Parallel(len(x), 1, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					y[i] = x[i] + 1
				}
			})
			return []*tensor.Tensor{tensor.FromFloat32(in[0].Shape, y)}, nil
		}), nil
	})
	// NewAddOne: y = x + 1 through Context.New, in place when allowed.
	Register(testDomain, "NewAddOne", tensor.Float32, func(*graph.Node, int64) (Kernel, error) {
		return KernelFunc(func(ctx *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			y := in[0]
			if !ctx.Reusable(0) {
				var err error
				if y, err = ctx.New(tensor.Float32, in[0].Shape); err != nil {
					return nil, err
				}
			}
			x, d := in[0].F32(), y.F32()
			for i := range d {
				d[i] = x[i] + 1
			}
			return []*tensor.Tensor{y}, nil
		}), nil
	})
	// Pass: returns its input (a view, as Reshape or Identity do).
	Register(testDomain, "Pass", AnyDType, func(*graph.Node, int64) (Kernel, error) {
		return KernelFunc(func(_ *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			return []*tensor.Tensor{in[0]}, nil
		}), nil
	})
	// Tail: a view of all but the first element (shares data, different
	// start address).
	Register(testDomain, "Tail", tensor.Float32, func(*graph.Node, int64) (Kernel, error) {
		return KernelFunc(func(_ *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			x := in[0].F32()
			return []*tensor.Tensor{tensor.FromFloat32([]int{len(x) - 1}, x[1:])}, nil
		}), nil
	})
	Register(testDomain, "Panic", AnyDType, func(*graph.Node, int64) (Kernel, error) {
		return KernelFunc(func(_ *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			var s []int
			_ = s[len(in)+3]
			return nil, nil
		}), nil
	})
	// Add2: y = a + b (same shape), to build graphs with fan-in.
	Register(testDomain, "Add2", tensor.Float32, func(*graph.Node, int64) (Kernel, error) {
		return KernelFunc(func(_ *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			a, b := in[0].F32(), in[1].F32()
			y := make([]float32, len(a))
			for i := range y {
				y[i] = a[i] + b[i]
			}
			return []*tensor.Tensor{tensor.FromFloat32(in[0].Shape, y)}, nil
		}), nil
	})
	// Branch: a minimal If that runs subgraph "then" or "else" by the
	// bool input, as ops/basic's If does.
	Register(testDomain, "Branch", AnyDType, func(n *graph.Node, _ int64) (Kernel, error) {
		tg, _ := n.AttrGraph("then")
		eg, _ := n.AttrGraph("else")
		ts, err := CompileSubgraph(tg)
		if err != nil {
			return nil, err
		}
		es, err := CompileSubgraph(eg)
		if err != nil {
			return nil, err
		}
		return KernelFunc(func(ctx *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if in[0].Bools()[0] {
				return ts.Run(ctx, nil)
			}
			return es.Run(ctx, nil)
		}), nil
	})
}

func node(op string, in []*graph.Value, out ...*graph.Value) *graph.Node {
	return &graph.Node{OpType: op, Domain: testDomain, Name: op + "_" + out[0].Name, Inputs: in, Outputs: out}
}

func f32Value(name string, dims ...graph.Dim) *graph.Value {
	return &graph.Value{Name: name, DType: tensor.Float32, Shape: dims}
}

func fill(n int, v float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = v + float32(i%7)
	}
	return x
}

// chain builds x -> AddOne -> AddOne ... (n nodes) -> y.
func chain(n int) *graph.Graph {
	x := f32Value("x", graph.Dim{Param: "N"}, graph.Dim{Value: 4})
	g := &graph.Graph{Inputs: []*graph.Value{x}, Opsets: map[string]int64{"": 17, testDomain: 1}}
	cur := x
	for i := 0; i < n; i++ {
		next := &graph.Value{Name: "v" + string(rune('a'+i%26)) + strings.Repeat("_", i/26)}
		g.Nodes = append(g.Nodes, node("AddOne", []*graph.Value{cur}, next))
		cur = next
	}
	g.Outputs = []*graph.Value{cur}
	return g
}

func TestChainPeakMemory(t *testing.T) {
	const nodes, rows = 40, 1 << 14 // each intermediate: 16384·4 floats = 256 KiB
	s, err := NewSession(chain(nodes), Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.FromFloat32([]int{rows, 4}, fill(rows*4, 0))
	out, err := s.Run(map[string]*tensor.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	y := out[s.OutputNames()[0]].F32()
	if y[0] != nodes || y[5] != 5+nodes {
		t.Fatalf("y[0]=%v y[5]=%v, want %v and %v", y[0], y[5], nodes, 5+nodes)
	}
	one := int64(rows * 4 * 4)
	// At most the input of a node and its output are alive at once.
	if p := s.PeakBytes(); p > 2*one || p < one {
		t.Errorf("peak %d bytes for a chain of %d tensors of %d bytes; want between 1 and 2 tensors", p, nodes, one)
	}
}

func TestInputChecks(t *testing.T) {
	s, err := NewSession(chain(2), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.InputNames(); len(got) != 1 || got[0] != "x" {
		t.Fatalf("InputNames %v", got)
	}
	good := tensor.FromFloat32([]int{3, 4}, fill(12, 0))
	cases := []struct {
		name string
		in   map[string]*tensor.Tensor
		want string
	}{
		{"missing", map[string]*tensor.Tensor{}, `input "x" is missing`},
		{"unknown", map[string]*tensor.Tensor{"x": good, "z": good}, `no input "z"`},
		{"dtype", map[string]*tensor.Tensor{"x": tensor.FromInt64([]int{3, 4}, make([]int64, 12))}, `input "x": dtype int64`},
		{"rank", map[string]*tensor.Tensor{"x": tensor.FromFloat32([]int{12}, fill(12, 0))}, `input "x": shape [12] has rank 1`},
		{"dim", map[string]*tensor.Tensor{"x": tensor.FromFloat32([]int{4, 3}, fill(12, 0))}, `dim 1 must be 4`},
		{"data", map[string]*tensor.Tensor{"x": tensor.FromFloat32([]int{3, 4}, fill(11, 0))}, `input "x"`},
	}
	for _, c := range cases {
		_, err := s.Run(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", c.name, err, c.want)
		}
	}
	// The symbolic batch dim takes any size.
	for _, n := range []int{1, 7, 64} {
		out, err := s.Run(map[string]*tensor.Tensor{"x": tensor.FromFloat32([]int{n, 4}, fill(4*n, 0))})
		if err != nil {
			t.Fatalf("batch %d: %v", n, err)
		}
		if sh := out[s.OutputNames()[0]].Shape; sh[0] != n {
			t.Fatalf("batch %d: output shape %v", n, sh)
		}
	}
}

func TestOutputsOwnedByCaller(t *testing.T) {
	x := f32Value("x", graph.Dim{Value: 2})
	w := &graph.Value{Name: "w", DType: tensor.Float32, Shape: graph.KnownShape(2), Const: tensor.FromFloat32([]int{2}, []float32{5, 6})}
	a, b, c, d := &graph.Value{Name: "a"}, &graph.Value{Name: "b"}, &graph.Value{Name: "c"}, &graph.Value{Name: "d"}
	g := &graph.Graph{
		Inputs: []*graph.Value{x}, Initializers: []*graph.Value{w},
		Nodes: []*graph.Node{
			node("Pass", []*graph.Value{x}, a),
			node("Pass", []*graph.Value{w}, b),
			node("AddOne", []*graph.Value{x}, c),
			node("Tail", []*graph.Value{x}, d),
		},
		// c twice and a view of c would share memory; x and w directly too.
		Outputs: []*graph.Value{a, b, c, x, w, d},
	}
	s, err := NewSession(g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	xin := tensor.FromFloat32([]int{2}, []float32{1, 2})
	out, err := s.Run(map[string]*tensor.Tensor{"x": xin})
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range out {
		o.F32()[0] = -100
		if xin.F32()[0] != 1 || xin.F32()[1] != 2 || w.Const.F32()[0] != 5 {
			t.Fatalf("writing output %q changed the input or the initializer", name)
		}
	}
	if out["c"].F32()[1] != 3 {
		t.Errorf("c = %v", out["c"].F32())
	}
}

func TestKernelPanicBecomesError(t *testing.T) {
	x := f32Value("x", graph.Dim{Value: 1})
	y := &graph.Value{Name: "y"}
	g := &graph.Graph{Inputs: []*graph.Value{x}, Nodes: []*graph.Node{node("Panic", []*graph.Value{x}, y)}, Outputs: []*graph.Value{y}}
	s, err := NewSession(g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Run(map[string]*tensor.Tensor{"x": tensor.FromFloat32([]int{1}, []float32{1})})
	if err == nil || !strings.Contains(err.Error(), `Panic "Panic_y"`) || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("error %v, want a panic error naming the node", err)
	}
}

func TestUnsupportedAtPlanTime(t *testing.T) {
	x := f32Value("x", graph.Dim{Value: 1})
	y := &graph.Value{Name: "y"}
	g := &graph.Graph{Inputs: []*graph.Value{x}, Nodes: []*graph.Node{node("NoSuchOp", []*graph.Value{x}, y)}, Outputs: []*graph.Value{y}}
	_, err := NewSession(g, Options{})
	var u *ErrUnsupported
	if !errors.As(err, &u) || u.Node.OpType != "NoSuchOp" {
		t.Fatalf("error %v, want ErrUnsupported for NoSuchOp", err)
	}
	// A known op with a dtype it has no kernel for.
	xi := &graph.Value{Name: "x", DType: tensor.Int64, Shape: graph.KnownShape(1)}
	g = &graph.Graph{Inputs: []*graph.Value{xi}, Nodes: []*graph.Node{node("AddOne", []*graph.Value{xi}, y)}, Outputs: []*graph.Value{y}}
	if _, err := NewSession(g, Options{}); !errors.As(err, &u) {
		t.Fatalf("error %v, want ErrUnsupported for int64 AddOne", err)
	}
}

// An undeclared input type is resolved at the first run from the tensor.
func TestLazyKernel(t *testing.T) {
	x := &graph.Value{Name: "x"} // no dtype, no shape
	y := &graph.Value{Name: "y"}
	g := &graph.Graph{Inputs: []*graph.Value{x}, Nodes: []*graph.Node{node("AddOne", []*graph.Value{x}, y)}, Outputs: []*graph.Value{y}}
	s, err := NewSession(g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(map[string]*tensor.Tensor{"x": tensor.FromFloat32([]int{1}, []float32{1})})
	if err != nil || out["y"].F32()[0] != 2 {
		t.Fatalf("out %v err %v", out, err)
	}
	_, err = s.Run(map[string]*tensor.Tensor{"x": tensor.FromInt64([]int{1}, []int64{1})})
	var u *ErrUnsupported
	if !errors.As(err, &u) {
		t.Fatalf("int64 run: error %v, want ErrUnsupported", err)
	}
}

// Outer-scope values used only inside a branch stay alive until the node
// that owns the branch has run, and the branch sees them.
func TestSubgraphOuterValues(t *testing.T) {
	x := f32Value("x", graph.Dim{Value: 2})
	cond := &graph.Value{Name: "cond", DType: tensor.Bool, Shape: graph.Shape{}}
	a := &graph.Value{Name: "a"} // used only by the then-branch
	b := &graph.Value{Name: "b"}
	y := &graph.Value{Name: "y"}
	t1 := &graph.Value{Name: "t1"}
	thenG := &graph.Graph{Name: "then", Nodes: []*graph.Node{node("Add2", []*graph.Value{a, x}, t1)}, Outputs: []*graph.Value{t1}}
	e1 := &graph.Value{Name: "e1"}
	elseG := &graph.Graph{Name: "else", Nodes: []*graph.Node{node("AddOne", []*graph.Value{b}, e1)}, Outputs: []*graph.Value{e1}}
	br := node("Branch", []*graph.Value{cond}, y)
	br.Attrs = []*graph.Attribute{{Name: "then", Type: graph.AttrGraph, G: thenG}, {Name: "else", Type: graph.AttrGraph, G: elseG}}
	g := &graph.Graph{
		Inputs: []*graph.Value{x, cond},
		// Deliberately out of order: the plan sorts.
		Nodes:   []*graph.Node{br, node("AddOne", []*graph.Value{x}, a), node("AddOne", []*graph.Value{a}, b)},
		Outputs: []*graph.Value{y},
		Opsets:  map[string]int64{"": 17},
	}
	var seen []string
	var mu sync.Mutex
	s, err := NewSession(g, Options{Threads: 2, Observe: func(v *graph.Value, _ *tensor.Tensor) {
		mu.Lock()
		seen = append(seen, v.Name)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	xin := tensor.FromFloat32([]int{2}, []float32{1, 2})
	for _, c := range []struct {
		cond bool
		want []float32
	}{{true, []float32{3, 5}}, {false, []float32{4, 5}}} {
		seen = nil
		out, err := s.Run(map[string]*tensor.Tensor{"x": xin, "cond": {DType: tensor.Bool, Shape: []int{}, Data: []bool{c.cond}}})
		if err != nil {
			t.Fatal(err)
		}
		got := out["y"].F32()
		if got[0] != c.want[0] || got[1] != c.want[1] {
			t.Errorf("cond %v: y = %v, want %v", c.cond, got, c.want)
		}
		// Observed: the inputs, a, b, the branch's value, y.
		if len(seen) != 6 {
			t.Errorf("cond %v: observed %v", c.cond, seen)
		}
	}
}

func TestNodeTimeAndCycle(t *testing.T) {
	var n int
	s, err := NewSession(chain(3), Options{NodeTime: func(*graph.Node, time.Duration) { n++ }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(map[string]*tensor.Tensor{"x": tensor.FromFloat32([]int{1, 4}, fill(4, 0))}); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("NodeTime called %d times, want 3", n)
	}
	a, b := &graph.Value{Name: "a"}, &graph.Value{Name: "b"}
	g := &graph.Graph{Nodes: []*graph.Node{node("Pass", []*graph.Value{b}, a), node("Pass", []*graph.Value{a}, b)}, Outputs: []*graph.Value{a}}
	var ce *graph.CycleError
	if _, err := NewSession(g, Options{}); !errors.As(err, &ce) {
		t.Fatalf("error %v, want a cycle error", err)
	}
}

func TestConcurrentRuns(t *testing.T) {
	s, err := NewSession(chain(5), Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out, err := s.Run(map[string]*tensor.Tensor{"x": tensor.FromFloat32([]int{i + 1, 4}, fill(4*(i+1), float32(i)))})
			if err == nil && out[s.OutputNames()[0]].F32()[0] != float32(i+5) {
				err = errors.New("wrong value")
			}
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func ptrOf(t *tensor.Tensor) uintptr { return dataPtr(t) }

// observer records the data address of every observed node output.
func observer(m map[string]uintptr) func(*graph.Value, *tensor.Tensor) {
	return func(v *graph.Value, t *tensor.Tensor) { m[v.Name] = ptrOf(t) }
}

func runX(t *testing.T, g *graph.Graph, opts Options, x []float32) (map[string]*tensor.Tensor, *Session) {
	t.Helper()
	s, err := NewSession(g, opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(map[string]*tensor.Tensor{"x": tensor.FromFloat32([]int{len(x)}, x)})
	if err != nil {
		t.Fatal(err)
	}
	return out, s
}

func wantVals(t *testing.T, what string, got *tensor.Tensor, x []float32, add float32) {
	t.Helper()
	for i, v := range got.F32() {
		if v != x[i]+add {
			t.Fatalf("%s = %v, want x+%v (x=%v)", what, got.F32(), add, x)
		}
	}
}

func TestInPlaceChain(t *testing.T) {
	x := f32Value("x", graph.Dim{Value: 4})
	g := &graph.Graph{Inputs: []*graph.Value{x}}
	cur := x
	for i := 0; i < 6; i++ {
		next := &graph.Value{Name: fmt.Sprint("v", i)}
		g.Nodes = append(g.Nodes, node("NewAddOne", []*graph.Value{cur}, next))
		cur = next
	}
	g.Outputs = []*graph.Value{cur}
	ptrs := map[string]uintptr{}
	xs := []float32{1, 2, 3, 4}
	out, s := runX(t, g, Options{Observe: observer(ptrs)}, xs)
	wantVals(t, "y", out["v5"], xs, 6)
	if xs[0] != 1 {
		t.Fatal("the graph input was overwritten")
	}
	for i := 1; i < 6; i++ {
		if ptrs[fmt.Sprint("v", i)] != ptrs["v0"] {
			t.Errorf("v%d not computed in place", i)
		}
	}
	if p := s.PeakBytes(); p != 16 {
		t.Errorf("peak %d bytes, want one 16-byte tensor", p)
	}
}

// A value read by two nodes is overwritten only by the last one, and a
// value with a live view is not overwritten at all.
func TestInPlaceFanOutAndViews(t *testing.T) {
	x := f32Value("x", graph.Dim{Value: 3})
	a, b, c, v, w, z := &graph.Value{Name: "a"}, &graph.Value{Name: "b"}, &graph.Value{Name: "c"}, &graph.Value{Name: "v"}, &graph.Value{Name: "w"}, &graph.Value{Name: "z"}
	g := &graph.Graph{
		Inputs: []*graph.Value{x},
		Nodes: []*graph.Node{
			node("NewAddOne", []*graph.Value{x}, a),
			node("NewAddOne", []*graph.Value{a}, b),
			node("Pass", []*graph.Value{a}, v),
			node("NewAddOne", []*graph.Value{v}, w),
			node("NewAddOne", []*graph.Value{a}, c),
			node("NewAddOne", []*graph.Value{c}, z),
		},
		Outputs: []*graph.Value{b, w, c, z},
	}
	xs := []float32{1, 2, 3}
	out, _ := runX(t, g, Options{}, xs)
	wantVals(t, "b", out["b"], xs, 2)
	wantVals(t, "w", out["w"], xs, 2)
	wantVals(t, "c", out["c"], xs, 2)
	wantVals(t, "z", out["z"], xs, 3)
}

// A branch that returns an outer value hands that buffer to the If's
// output: it must not be recycled when the outer value dies.
func TestBranchOutputKeepsOuterBuffer(t *testing.T) {
	x := f32Value("x", graph.Dim{Value: 3})
	cond := &graph.Value{Name: "cond", DType: tensor.Bool, Shape: graph.Shape{}}
	a, y, d1, d2 := &graph.Value{Name: "a"}, &graph.Value{Name: "y"}, &graph.Value{Name: "d1"}, &graph.Value{Name: "d2"}
	tv, ev := &graph.Value{Name: "tv"}, &graph.Value{Name: "ev"}
	br := node("Branch", []*graph.Value{cond}, y)
	br.Attrs = []*graph.Attribute{
		{Name: "then", Type: graph.AttrGraph, G: &graph.Graph{Nodes: []*graph.Node{node("Pass", []*graph.Value{a}, tv)}, Outputs: []*graph.Value{tv}}},
		{Name: "else", Type: graph.AttrGraph, G: &graph.Graph{Outputs: []*graph.Value{a}}},
	}
	_ = ev
	g := &graph.Graph{
		Inputs: []*graph.Value{x, cond},
		Nodes: []*graph.Node{
			node("NewAddOne", []*graph.Value{x}, a),
			br,
			node("NewAddOne", []*graph.Value{x}, d1),
			node("NewAddOne", []*graph.Value{d1}, d2),
		},
		Outputs: []*graph.Value{y, d2},
	}
	s, err := NewSession(g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	xs := []float32{1, 2, 3}
	for _, c := range []bool{true, false} {
		out, err := s.Run(map[string]*tensor.Tensor{"x": tensor.FromFloat32([]int{3}, xs), "cond": {DType: tensor.Bool, Shape: []int{}, Data: []bool{c}}})
		if err != nil {
			t.Fatal(err)
		}
		wantVals(t, fmt.Sprint("y (cond ", c, ")"), out["y"], xs, 1)
		wantVals(t, "d2", out["d2"], xs, 2)
	}
}

// Buffers released in one run serve the allocations of the next.
func TestPoolAcrossRuns(t *testing.T) {
	x := f32Value("x", graph.Dim{Value: 5})
	a, b, c := &graph.Value{Name: "a"}, &graph.Value{Name: "b"}, &graph.Value{Name: "c"}
	g := &graph.Graph{
		Inputs: []*graph.Value{x},
		Nodes: []*graph.Node{
			node("NewAddOne", []*graph.Value{x}, a),
			node("NewAddOne", []*graph.Value{x}, b),
			node("Add2", []*graph.Value{a, b}, c),
		},
		Outputs: []*graph.Value{c},
	}
	p1, p2 := map[string]uintptr{}, map[string]uintptr{}
	cur := p1
	s, err := NewSession(g, Options{Observe: func(v *graph.Value, t *tensor.Tensor) { cur[v.Name] = ptrOf(t) }})
	if err != nil {
		t.Fatal(err)
	}
	xs := []float32{1, 2, 3, 4, 5}
	in := map[string]*tensor.Tensor{"x": tensor.FromFloat32([]int{5}, xs)}
	if _, err := s.Run(in); err != nil {
		t.Fatal(err)
	}
	cur = p2
	out, err := s.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	wantVals(t, "c/2", tensor.FromFloat32([]int{5}, []float32{out["c"].F32()[0] / 2, out["c"].F32()[1] / 2, out["c"].F32()[2] / 2, out["c"].F32()[3] / 2, out["c"].F32()[4] / 2}), xs, 1)
	reused := 0
	for _, n := range []string{"a", "b"} {
		if p2[n] == p1["a"] || p2[n] == p1["b"] {
			reused++
		}
	}
	if reused != 2 {
		t.Errorf("run 2 reused %d of run 1's 2 released buffers", reused)
	}
}

// BenchmarkRunOverhead times a 100-node chain on 4-element tensors: almost
// all of it is the executor's per-node work (input gathering, ownership
// tracking, the kernel call through the interface), reported per node.
func BenchmarkRunOverhead(b *testing.B) {
	for _, op := range []string{"NewAddOne", "Pass"} {
		b.Run(op, func(b *testing.B) {
			x := f32Value("x", graph.Dim{Value: 4})
			g := &graph.Graph{Inputs: []*graph.Value{x}}
			cur := x
			for i := 0; i < 100; i++ {
				next := &graph.Value{Name: fmt.Sprint("v", i)}
				g.Nodes = append(g.Nodes, node(op, []*graph.Value{cur}, next))
				cur = next
			}
			g.Outputs = []*graph.Value{cur}
			s, err := NewSession(g, Options{})
			if err != nil {
				b.Fatal(err)
			}
			in := map[string]*tensor.Tensor{"x": tensor.FromFloat32([]int{4}, fill(4, 0))}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Run(in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/node")
		})
	}
}
