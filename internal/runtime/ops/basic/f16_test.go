package basic

import (
	"fmt"
	"math/rand"
	"reflect"
	"sync"
	"testing"

	"github.com/x448/float16"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

var fallbackMu sync.Mutex

// f16Kernels returns op's float16 kernel as the registry resolves it now,
// and the runtime's generic float16 fallback around op's float32 kernel (by
// registering the float32 factory alone under a private op name, which has
// no float16 kernel, so Lookup wraps it).
func f16Kernels(t testing.TB, op string, opset int64, attrs []*graph.Attribute, nin int) (got, fallback runtime.Kernel) {
	t.Helper()
	node := func(opType string) *graph.Node {
		n := &graph.Node{OpType: opType, Attrs: attrs}
		for i := 0; i < nin; i++ {
			n.Inputs = append(n.Inputs, &graph.Value{Name: fmt.Sprint("in", i), DType: tensor.Float16})
		}
		n.Outputs = []*graph.Value{{Name: "out", DType: tensor.Float16}}
		return n
	}
	f, ok := runtime.Lookup("", op, tensor.Float16)
	if !ok {
		t.Fatalf("no float16 kernel for %s", op)
	}
	k, err := f(node(op), opset)
	if err != nil {
		t.Fatal(err)
	}
	f32, ok := runtime.Lookup("", op, tensor.Float32)
	if !ok {
		t.Fatalf("no float32 kernel for %s", op)
	}
	private := "qtoolTestF32Only" + op
	fallbackMu.Lock()
	if _, ok := runtime.Lookup("", private, tensor.Float32); !ok {
		runtime.Register("", private, tensor.Float32, f32)
	}
	fallbackMu.Unlock()
	ff, ok := runtime.Lookup("", private, tensor.Float16)
	if !ok {
		t.Fatalf("no fallback for %s", op)
	}
	kf, err := ff(node(private), opset)
	if err != nil {
		t.Fatal(err)
	}
	return k, kf
}

// allHalves is every float16 bit pattern.
func allHalves() *tensor.Tensor {
	h := make([]float16.Float16, 1<<16)
	for i := range h {
		h[i] = float16.Frombits(uint16(i))
	}
	return &tensor.Tensor{DType: tensor.Float16, Shape: []int{len(h)}, Data: h}
}

func sameHalves(a, b *tensor.Tensor) (int, string) {
	x, y := a.F16(), b.F16()
	bad, first := 0, ""
	for i := range x {
		if x[i] != y[i] && !(x[i].IsNaN() && y[i].IsNaN()) {
			if bad == 0 {
				first = fmt.Sprintf("[%#04x] %#04x vs %#04x", i, x[i].Bits(), y[i].Bits())
			}
			bad++
		}
	}
	return bad, first
}

func runK(t testing.TB, k runtime.Kernel, in ...*tensor.Tensor) *tensor.Tensor {
	t.Helper()
	out, err := k.Run(&runtime.Context{Threads: 1}, in)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].DType != tensor.Float16 {
		t.Fatalf("output is %v", out[0].DType)
	}
	return out[0]
}

// TestFloat16UnaryBits runs every float unary op on all 65536 float16
// values through the kernel the registry resolves for float16 (a lookup
// table after the first 65536 elements, reluF16 for Relu) and checks it
// against the float64 reference rounded to float32 and then to float16
// (x448), the per-element path basic used to take: the speed-up must not
// move a single bit (NaN payloads aside).
func TestFloat16UnaryBits(t *testing.T) {
	x := allHalves()
	type variant struct {
		op    string
		attrs []*graph.Attribute
	}
	var vs []variant
	for op := range unaryOps {
		vs = append(vs, variant{op, nil})
	}
	vs = append(vs,
		variant{"LeakyRelu", []*graph.Attribute{graph.FloatAttr("alpha", 0.1)}},
		variant{"LeakyRelu", []*graph.Attribute{graph.FloatAttr("alpha", 1.7)}},
		variant{"Elu", []*graph.Attribute{graph.FloatAttr("alpha", 0.3)}},
		variant{"HardSigmoid", []*graph.Attribute{graph.FloatAttr("alpha", 1.0/6), graph.FloatAttr("beta", 0.5)}},
	)
	for _, v := range vs {
		u, err := unaryOps[v.op](&graph.Node{OpType: v.op, Attrs: v.attrs})
		if err != nil {
			t.Fatal(err)
		}
		ref, err := runUnary(&runtime.Context{Threads: 1}, unaryOp{f: u.f}, []*tensor.Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		// An attribute no op reads gives the kernel a table of its own,
		// still empty: a first run on every 16th value goes element by
		// element, the second (all values) fills the table.
		fresh := append([]*graph.Attribute{graph.IntAttr("qtool_test_fresh", 1)}, v.attrs...)
		k, _ := f16Kernels(t, v.op, 14, fresh, 1)
		sub, subRef := make([]float16.Float16, 1<<12), make([]float16.Float16, 1<<12)
		for i := range sub {
			sub[i], subRef[i] = x.F16()[i*16], ref[0].F16()[i*16]
		}
		for _, c := range []struct{ in, want *tensor.Tensor }{
			{&tensor.Tensor{DType: tensor.Float16, Shape: []int{len(sub)}, Data: sub}, &tensor.Tensor{DType: tensor.Float16, Shape: []int{len(sub)}, Data: subRef}},
			{x, ref[0]},
			{x, ref[0]},
		} {
			if bad, first := sameHalves(runK(t, k, c.in), c.want); bad > 0 {
				t.Errorf("%s %v on %d values: %d differ from the float64 path, first %s", v.op, v.attrs, c.in.Len(), bad, first)
			}
		}
	}
}

// TestFloat16BinaryBits checks the float16 elementwise binary ops (and
// Clip) as the registry resolves them against their float32 kernels run on
// x448-widened inputs with the results rounded by x448 (what f16wrap did),
// pairing every float16 value with pseudo-random ones and with a broadcast
// scalar.
func TestFloat16BinaryBits(t *testing.T) {
	x := allHalves()
	r := rand.New(rand.NewSource(5))
	yh := make([]float16.Float16, x.Len())
	for i := range yh {
		yh[i] = float16.Frombits(uint16(r.Intn(1 << 16)))
		if i%7 == 0 {
			// Mostly ordinary values, so that most pairs do arithmetic.
			yh[i] = float16.Fromfloat32(float32(r.NormFloat64() * 4))
		}
	}
	y := &tensor.Tensor{DType: tensor.Float16, Shape: x.Shape, Data: yh}
	scalar := &tensor.Tensor{DType: tensor.Float16, Shape: []int{}, Data: []float16.Float16{float16.Fromfloat32(-1.375)}}
	hi := &tensor.Tensor{DType: tensor.Float16, Shape: []int{}, Data: []float16.Float16{float16.Fromfloat32(6)}}
	widen := func(t *tensor.Tensor) *tensor.Tensor {
		f := make([]float32, t.Len())
		for i, v := range t.F16() {
			f[i] = v.Float32()
		}
		return tensor.FromFloat32(t.Shape, f)
	}
	for _, c := range []struct {
		op    string
		attrs []*graph.Attribute
		in    []*tensor.Tensor
	}{
		{"Add", nil, []*tensor.Tensor{x, y}}, {"Sub", nil, []*tensor.Tensor{x, y}},
		{"Mul", nil, []*tensor.Tensor{x, y}}, {"Div", nil, []*tensor.Tensor{x, y}},
		{"Add", nil, []*tensor.Tensor{x, scalar}}, {"Mul", nil, []*tensor.Tensor{scalar, x}},
		{"Max", nil, []*tensor.Tensor{x, y}}, {"Min", nil, []*tensor.Tensor{x, y}},
		{"Sum", nil, []*tensor.Tensor{x, y, scalar}}, {"Mean", nil, []*tensor.Tensor{x, y}},
		{"Pow", nil, []*tensor.Tensor{x, scalar}}, {"PRelu", nil, []*tensor.Tensor{x, scalar}},
		{"Mod", []*graph.Attribute{graph.IntAttr("fmod", 1)}, []*tensor.Tensor{x, y}},
		{"Clip", nil, []*tensor.Tensor{x, scalar, hi}},
		{"Less", nil, []*tensor.Tensor{x, y}}, {"Equal", nil, []*tensor.Tensor{x, y}},
	} {
		name := fmt.Sprintf("%s%v", c.op, c.in[len(c.in)-1].Shape)
		f16, ok := runtime.Lookup("", c.op, tensor.Float16)
		if !ok {
			t.Fatalf("%s: no float16 kernel", c.op)
		}
		f32, _ := runtime.Lookup("", c.op, tensor.Float32)
		node := func(dt tensor.DType) *graph.Node {
			n := &graph.Node{OpType: c.op, Attrs: c.attrs, Outputs: []*graph.Value{{Name: "y"}}}
			for i := range c.in {
				n.Inputs = append(n.Inputs, &graph.Value{Name: fmt.Sprint("x", i), DType: dt})
			}
			return n
		}
		k16, err := f16(node(tensor.Float16), 13)
		if err != nil {
			t.Fatal(err)
		}
		k32, err := f32(node(tensor.Float32), 13)
		if err != nil {
			t.Fatal(err)
		}
		var wide []*tensor.Tensor
		for _, in := range c.in {
			wide = append(wide, widen(in))
		}
		got, err := k16.Run(&runtime.Context{Threads: 2}, c.in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := k32.Run(&runtime.Context{Threads: 1}, wide)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want[0].DType == tensor.Bool {
			if !reflect.DeepEqual(got[0].Data, want[0].Data) {
				t.Errorf("%s: bool results differ", name)
			}
			continue
		}
		h := make([]float16.Float16, want[0].Len())
		for i, v := range want[0].F32() {
			h[i] = float16.Fromfloat32(v)
		}
		if got[0].DType != tensor.Float16 {
			t.Fatalf("%s: output is %v", name, got[0].DType)
		}
		ref := &tensor.Tensor{DType: tensor.Float16, Shape: want[0].Shape, Data: h}
		if bad, first := sameHalves(got[0], ref); bad > 0 {
			t.Errorf("%s: %d of %d differ, first %s", name, bad, len(h), first)
		}
	}
}

// TestReluF16 pins the float16 Relu on bits: -0 and negatives to +0,
// NaNs (either sign) and positives through.
func TestReluF16(t *testing.T) {
	in := []uint16{0x0000, 0x8000, 0x3c00, 0xbc00, 0x7c00, 0xfc00, 0x7e00, 0xfe01, 0x0001, 0x8001, 0x7bff, 0xfbff}
	want := []uint16{0x0000, 0x0000, 0x3c00, 0x0000, 0x7c00, 0x0000, 0x7e00, 0xfe01, 0x0001, 0x0000, 0x7bff, 0x0000}
	h := make([]float16.Float16, len(in))
	for i, b := range in {
		h[i] = float16.Frombits(b)
	}
	out, err := reluF16(&runtime.Context{Threads: 1}, []*tensor.Tensor{{DType: tensor.Float16, Shape: []int{len(h)}, Data: h}})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range out[0].F16() {
		if v.Bits() != want[i] {
			t.Errorf("Relu(%#04x) = %#04x, want %#04x", in[i], v.Bits(), want[i])
		}
	}
}

// BenchmarkFloat16 times float16 Relu and Add on a 1x64x56x56 activation,
// one thread: "registry" is the kernel Lookup picks for float16 (basic's
// own while it registers one), "fallback" the runtime's generic float16
// wrapper around the float32 kernel. Run both side by side:
//
//	go test ./internal/runtime/ops/basic -run '^$' -bench Float16 -count 3
func BenchmarkFloat16(b *testing.B) {
	shape := []int{1, 64, 56, 56}
	n := 64 * 56 * 56
	h1, h2 := make([]float16.Float16, n), make([]float16.Float16, n)
	for i := range h1 {
		h1[i] = float16.Fromfloat32(float32(i%251)/25 - 5)
		h2[i] = float16.Fromfloat32(float32(i%13)/4 - 1.5)
	}
	x := &tensor.Tensor{DType: tensor.Float16, Shape: shape, Data: h1}
	y := &tensor.Tensor{DType: tensor.Float16, Shape: shape, Data: h2}
	for _, c := range []struct {
		op string
		in []*tensor.Tensor
	}{{"Relu", []*tensor.Tensor{x}}, {"Add", []*tensor.Tensor{x, y}}, {"Sigmoid", []*tensor.Tensor{x}}, {"HardSwish", []*tensor.Tensor{x}}} {
		f16Kernels(b, c.op, 14, nil, len(c.in)) // registers the private float32-only op
		for _, v := range []struct{ name, op string }{{"registry", c.op}, {"fallback", "qtoolTestF32Only" + c.op}} {
			g := &graph.Graph{Name: "f16", Opsets: map[string]int64{"": 14}}
			feeds := map[string]*tensor.Tensor{}
			var ins []*graph.Value
			for i, t := range c.in {
				in := &graph.Value{Name: fmt.Sprint("x", i), DType: tensor.Float16, Shape: graph.KnownShape(shape...)}
				g.Inputs = append(g.Inputs, in)
				ins = append(ins, in)
				feeds[in.Name] = t
			}
			nd := &graph.Node{Name: "n", OpType: v.op, Inputs: ins, Outputs: []*graph.Value{{Name: "y", DType: tensor.Float16}}}
			g.Nodes = []*graph.Node{nd}
			g.Outputs = nd.Outputs
			s, err := runtime.NewSession(g, runtime.Options{Threads: 1})
			if err != nil {
				b.Fatal(err)
			}
			b.Run(c.op+"/"+v.name, func(b *testing.B) {
				b.SetBytes(int64(2 * n * len(c.in)))
				for b.Loop() {
					if _, err := s.Run(feeds); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
