package runtime

import (
	"fmt"
	"math"
	"testing"

	"github.com/x448/float16"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	// MulAdd: y = x*w + 1 (float32 only), in place when allowed; a second
	// output counts the negative results (int64). The factory refuses a
	// constant w that is not float32, as prepacking kernels do.
	Register(testDomain, "MulAdd", tensor.Float32, func(n *graph.Node, _ int64) (Kernel, error) {
		if w := n.Input(1); w != nil && w.Const != nil && w.Const.DType != tensor.Float32 {
			return nil, fmt.Errorf("weight is %v at plan time", w.Const.DType)
		}
		if w := n.Input(1); w != nil && w.DType == tensor.Float16 {
			return nil, fmt.Errorf("weight declared float16")
		}
		return KernelFunc(func(ctx *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if in[0].DType != tensor.Float32 || in[1].DType != tensor.Float32 {
				return nil, fmt.Errorf("inputs %v, %v", in[0].DType, in[1].DType)
			}
			y := in[0]
			if !ctx.Reusable(0) {
				var err error
				if y, err = ctx.New(tensor.Float32, in[0].Shape); err != nil {
					return nil, err
				}
			}
			x, w, out := in[0].F32(), in[1].F32(), y.F32()
			neg := int64(0)
			for i := range x {
				out[i] = x[i]*w[i%len(w)] + 1
				if out[i] < 0 {
					neg++
				}
			}
			return []*tensor.Tensor{y, tensor.FromInt64(nil, []int64{neg})}, nil
		}), nil
	})
	// Both: a dtype-independent kernel and a float32 one; float16 must take
	// the dtype-independent one.
	Register(testDomain, "Both", AnyDType, func(*graph.Node, int64) (Kernel, error) {
		return KernelFunc(func(_ *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) { return []*tensor.Tensor{in[0]}, nil }), nil
	})
	Register(testDomain, "Both", tensor.Float32, func(*graph.Node, int64) (Kernel, error) {
		return nil, fmt.Errorf("float32 kernel chosen")
	})
}

func f16Tensor(shape []int, x []float32) *tensor.Tensor {
	h := make([]float16.Float16, len(x))
	for i, v := range x {
		h[i] = float16.Fromfloat32(v)
	}
	return &tensor.Tensor{DType: tensor.Float16, Shape: shape, Data: h}
}

// TestFloat16Fallback runs two float32-only nodes on float16 data: one
// with every value declared, one whose output type the graph leaves open.
// Each result must be the float32 result of the widened inputs rounded to
// float16, whatever the thread count and however often the session runs
// (buffers are recycled between runs).
func TestFloat16Fallback(t *testing.T) {
	const n = 1000
	xs := make([]float32, n)
	ws := make([]float32, 7)
	for i := range xs {
		xs[i] = float32(i%37)*0.173 - 3.1
	}
	for i := range ws {
		ws[i] = 0.3*float32(i) - 0.77
	}
	x := &graph.Value{Name: "x", DType: tensor.Float16, Shape: graph.KnownShape(n)}
	w := &graph.Value{Name: "w", DType: tensor.Float16, Shape: graph.KnownShape(7), Const: f16Tensor([]int{7}, ws)}
	y := &graph.Value{Name: "y", DType: tensor.Float16}
	c1 := &graph.Value{Name: "c1", DType: tensor.Int64}
	z := &graph.Value{Name: "z"} // type left to the kernel
	c2 := &graph.Value{Name: "c2"}
	g := &graph.Graph{
		Inputs:       []*graph.Value{x},
		Outputs:      []*graph.Value{z, c1, c2},
		Initializers: []*graph.Value{w},
		Nodes: []*graph.Node{
			{Name: "a", OpType: "MulAdd", Domain: testDomain, Inputs: []*graph.Value{x, w}, Outputs: []*graph.Value{y, c1}},
			{Name: "b", OpType: "MulAdd", Domain: testDomain, Inputs: []*graph.Value{y, w}, Outputs: []*graph.Value{z, c2}},
		},
		Opsets: map[string]int64{"": 17, testDomain: 1},
	}
	// The reference, element by element with x448/float16's rounding.
	want := make([]float16.Float16, n)
	neg1, neg2 := int64(0), int64(0)
	for i := range xs {
		xi := float16.Fromfloat32(xs[i]).Float32()
		wi := float16.Fromfloat32(ws[i%7]).Float32()
		a := xi*wi + 1
		if a < 0 {
			neg1++
		}
		yi := float16.Fromfloat32(a).Float32()
		b := yi*wi + 1
		if b < 0 {
			neg2++
		}
		want[i] = float16.Fromfloat32(b)
	}
	for _, threads := range []int{1, 2} {
		s, err := NewSession(g, Options{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		for run := 0; run < 3; run++ {
			out, err := s.Run(map[string]*tensor.Tensor{"x": f16Tensor([]int{n}, xs)})
			if err != nil {
				t.Fatal(err)
			}
			if got := out["z"]; got.DType != tensor.Float16 {
				t.Fatalf("z is %v, want float16", got.DType)
			}
			for i, v := range out["z"].F16() {
				if v != want[i] {
					t.Fatalf("threads %d run %d: z[%d] = %v, want %v", threads, run, i, v, want[i])
				}
			}
			if a, b := out["c1"].I64()[0], out["c2"].I64()[0]; a != neg1 || b != neg2 {
				t.Fatalf("counts %d, %d; want %d, %d", a, b, neg1, neg2)
			}
		}
	}
}

func TestFloat16LookupOrder(t *testing.T) {
	f, ok := Lookup(testDomain, "Both", tensor.Float16)
	if !ok {
		t.Fatal("no kernel")
	}
	if _, err := f(&graph.Node{OpType: "Both", Domain: testDomain}, 1); err != nil {
		t.Fatalf("float16 took the float32 kernel over the dtype-independent one: %v", err)
	}
	if _, ok := Lookup(testDomain, "MulAdd", tensor.Float64); ok {
		t.Fatal("float64 must not fall back to float32")
	}
	if _, ok := Lookup(testDomain, "NoSuchOp", tensor.Float16); ok {
		t.Fatal("found a kernel for an unregistered op")
	}
}

// TestHalfConversions: the fast conversions give x448/float16's results
// for every float16 and for a sweep of float32 bit patterns that covers
// every exponent (with the rounding boundaries, ties, subnormals,
// overflow to Inf and NaNs).
func TestHalfConversions(t *testing.T) {
	tab := widenTable()
	for i := 0; i < 1<<16; i++ {
		h := float16.Frombits(uint16(i))
		if a, b := tab[i], h.Float32(); a != b && !(a != a && b != b) {
			t.Fatalf("widen %#04x: %v, want %v", i, a, b)
		}
		if h.IsNaN() {
			continue
		}
		// Exact round trips, and the ties on either side of each value.
		f := h.Float32()
		if got := toHalf(f); got != h {
			t.Fatalf("narrow %v: %#04x, want %#04x", f, got.Bits(), i)
		}
	}
	check := func(x uint32) {
		f := math.Float32frombits(x)
		if got, want := toHalf(f), float16.Fromfloat32(f); got != want {
			t.Fatalf("narrow %#08x (%g): %#04x, want %#04x", x, f, got.Bits(), want.Bits())
		}
	}
	for x := uint64(0); x < 1<<32; x += 4093 {
		check(uint32(x))
	}
	for e := uint32(0); e < 256; e++ {
		for _, m := range []uint32{0, 1, 0xfff, 0x1000, 0x1001, 0x2000, 0x3000, 0x5000, 0x7fefff, 0x7ff000, 0x7ff001, 0x7fffff, 0x400000} {
			check(e<<23 | m)
			check(1<<31 | e<<23 | m)
		}
	}
}
