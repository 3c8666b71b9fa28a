package basic

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/x448/float16"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// unaryOp is a float elementwise function: f is the reference in float64
// (also used for float32 elements: one rounding at the end), hot an
// optional float32 slice loop for the ops that sit on a CNN's critical path.
type unaryOp struct {
	f   func(float64) float64
	hot func(dst, src []float32)
}

// unaryFactory builds a unary op from the node's attributes.
type unaryFactory func(n *graph.Node) (unaryOp, error)

func simple(f func(float64) float64) unaryFactory {
	return func(*graph.Node) (unaryOp, error) { return unaryOp{f: f}, nil }
}

func attrF(n *graph.Node, name string, def float32) (float64, error) {
	v, err := n.AttrFloat(name, def)
	return float64(v), err
}

// unaryOps are the float unary ops; f16_test.go uses their float64
// references.
var unaryOps = map[string]unaryFactory{
	"Relu": func(*graph.Node) (unaryOp, error) {
		return unaryOp{f: func(x float64) float64 { return math.Max(x, 0) }, hot: reluF32}, nil
	},
	"Sigmoid": func(*graph.Node) (unaryOp, error) { return unaryOp{f: sigmoid64, hot: sigmoidF32}, nil },
	"Tanh":    func(*graph.Node) (unaryOp, error) { return unaryOp{f: math.Tanh, hot: tanhF32}, nil },
	"LeakyRelu": func(n *graph.Node) (unaryOp, error) {
		a, err := attrF(n, "alpha", 0.01)
		af := float32(a)
		return unaryOp{
			f: func(x float64) float64 {
				if x < 0 {
					return a * x
				}
				return x
			},
			hot: func(dst, src []float32) { leakyF32(dst, src, af) },
		}, err
	},
	"Elu": func(n *graph.Node) (unaryOp, error) {
		a, err := attrF(n, "alpha", 1)
		return unaryOp{f: func(x float64) float64 {
			if x < 0 {
				return a * (math.Exp(x) - 1)
			}
			return x
		}}, err
	},
	"Selu": func(n *graph.Node) (unaryOp, error) {
		a, err := attrF(n, "alpha", 1.67326319217681884765625)
		if err != nil {
			return unaryOp{}, err
		}
		g, err := attrF(n, "gamma", 1.05070102214813232421875)
		return unaryOp{f: func(x float64) float64 {
			if x <= 0 {
				return g * (a*math.Exp(x) - a)
			}
			return g * x
		}}, err
	},
	"Celu": func(n *graph.Node) (unaryOp, error) {
		a, err := attrF(n, "alpha", 1)
		return unaryOp{f: func(x float64) float64 {
			return math.Max(0, x) + math.Min(0, a*(math.Exp(x/a)-1))
		}}, err
	},
	"ThresholdedRelu": func(n *graph.Node) (unaryOp, error) {
		a, err := attrF(n, "alpha", 1)
		return unaryOp{f: func(x float64) float64 {
			if x > a {
				return x
			}
			return 0
		}}, err
	},
	"HardSigmoid": func(n *graph.Node) (unaryOp, error) {
		a, err := attrF(n, "alpha", 0.2)
		if err != nil {
			return unaryOp{}, err
		}
		b, err := attrF(n, "beta", 0.5)
		af, bf := float32(a), float32(b)
		return unaryOp{
			f:   func(x float64) float64 { return math.Max(0, math.Min(1, a*x+b)) },
			hot: func(dst, src []float32) { hardSigmoidF32(dst, src, af, bf, false) },
		}, err
	},
	"HardSwish": func(*graph.Node) (unaryOp, error) {
		return unaryOp{
			f: func(x float64) float64 { return x * math.Max(0, math.Min(1, x/6+0.5)) },
			// x·(1/6) rather than x/6: within an ulp, and one loop
			// serves both ops.
			hot: func(dst, src []float32) { hardSigmoidF32(dst, src, 1.0/6, 0.5, true) },
		}, nil
	},
	"Softplus": simple(func(x float64) float64 {
		if x > 30 {
			return x
		}
		return math.Log1p(math.Exp(x))
	}),
	"Softsign": simple(func(x float64) float64 { return x / (1 + math.Abs(x)) }),
	"Mish":     simple(func(x float64) float64 { return x * math.Tanh(math.Log1p(math.Exp(x))) }),
	"Sqrt":     simple(math.Sqrt),
	"Exp":      simple(math.Exp),
	"Log":      simple(math.Log),
	"Erf":      simple(math.Erf),
	"Floor":    simple(math.Floor),
	"Ceil":     simple(math.Ceil),
	"Round":    simple(math.RoundToEven),
	"Reciprocal": simple(func(x float64) float64 {
		return 1 / x
	}),
	"Sin":   simple(math.Sin),
	"Cos":   simple(math.Cos),
	"Tan":   simple(math.Tan),
	"Asin":  simple(math.Asin),
	"Acos":  simple(math.Acos),
	"Atan":  simple(math.Atan),
	"Sinh":  simple(math.Sinh),
	"Cosh":  simple(math.Cosh),
	"Asinh": simple(math.Asinh),
	"Acosh": simple(math.Acosh),
	"Atanh": simple(math.Atanh),
	"Neg":   simple(func(x float64) float64 { return -x }),
	"Abs":   simple(math.Abs),
	"Sign": simple(func(x float64) float64 {
		switch {
		case x > 0:
			return 1
		case x < 0:
			return -1
		}
		return x // keeps 0 and NaN
	}),
}

func init() {
	for op, uf := range unaryOps {
		uf := uf
		op := op
		floats := []tensor.DType{tensor.Float32, tensor.Float64, tensor.Float16}
		if op == "Relu" {
			floats = floats[:2] // reluF16 below
		}
		reg(op, floats, func(n *graph.Node, _ int64) (runtime.Kernel, error) {
			u, err := uf(n)
			if err != nil {
				return nil, err
			}
			tab := f16TableFor(op, n)
			return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
				if len(in) > 0 && in[0] != nil && in[0].DType == tensor.Float16 {
					return runUnaryF16(ctx, u, tab, in)
				}
				return runUnary(ctx, u, in)
			}), nil
		})
	}
	// The integer forms that models and shape subgraphs use.
	reg("Neg", intTypes, kf(intUnary(func(x int64) int64 { return -x })))
	reg("Abs", intTypes, kf(intUnary(func(x int64) int64 {
		if x < 0 {
			return -x
		}
		return x
	})))
	reg("Relu", intTypes, kf(intUnary(func(x int64) int64 { return max(x, 0) })))
	reg("Sign", intTypes, kf(intUnary(func(x int64) int64 {
		switch {
		case x > 0:
			return 1
		case x < 0:
			return -1
		}
		return 0
	})))
	reg("Clip", numericTypes, newClip)
	reg("Relu", []tensor.DType{tensor.Float16}, kf(reluF16))
}

// A float16 unary op has only 65536 possible inputs, so once an op has
// seen that many elements it computes all of them into a table and looks
// results up from then on: an order of magnitude faster than converting
// every element (Sigmoid on 1x64x56x56: 3.2 ms -> 0.3 ms), and bit for
// bit the per-element float64 path, which fills the table and runs until
// then. (The runtime's generic fallback, float32 kernel between fast
// conversions, is not always bit-identical here: Sigmoid's and
// HardSwish's float32 loops round a few float16 ties the other way.)
// Tables are shared by the nodes of one op with the same attributes.
type f16Table struct {
	seen atomic.Int64
	once sync.Once
	tab  atomic.Pointer[[1 << 16]float16.Float16]
}

var (
	f16TablesMu sync.Mutex
	f16Tables   = map[string]*f16Table{} // by op and attributes
)

// maxSharedF16Tables bounds the process-wide tables (128 KiB each once
// filled); past it a kernel keeps a table of its own, freed with it, so
// that a server loading model after model with new attribute values does
// not grow without bound.
const maxSharedF16Tables = 64

func f16TableFor(op string, n *graph.Node) *f16Table {
	var b strings.Builder
	b.WriteString(op)
	for _, a := range n.Attrs {
		fmt.Fprintf(&b, "|%s=%v,%v", a.Name, a.F, a.I)
	}
	key := b.String()
	f16TablesMu.Lock()
	defer f16TablesMu.Unlock()
	if t, ok := f16Tables[key]; ok {
		return t
	}
	t := &f16Table{}
	if len(f16Tables) < maxSharedF16Tables {
		f16Tables[key] = t
	}
	return t
}

func f16Unary(u unaryOp, h float16.Float16) float16.Float16 {
	return float16.Fromfloat32(float32(u.f(float64(h.Float32()))))
}

func runUnaryF16(ctx *runtime.Context, u unaryOp, t *f16Table, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := need(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if err := x.Validate(); err != nil {
		return nil, err
	}
	out, err := output(ctx, in, x.DType, x.Shape, 0)
	if err != nil {
		return nil, err
	}
	src, dst := x.F16(), out.F16()
	tab := t.tab.Load()
	if tab == nil && t.seen.Add(int64(len(src))) >= 1<<16 {
		t.once.Do(func() {
			tab := new([1 << 16]float16.Float16)
			for i := range tab {
				tab[i] = f16Unary(u, float16.Frombits(uint16(i)))
			}
			t.tab.Store(tab)
		})
		tab = t.tab.Load()
	}
	ctx.Parallel(len(src), grain, func(lo, hi int) {
		if tab != nil {
			for i := lo; i < hi; i++ {
				dst[i] = tab[src[i]]
			}
			return
		}
		for i := lo; i < hi; i++ {
			dst[i] = f16Unary(u, src[i])
		}
	})
	return one(out)
}

// reluF16 works on the float16 bits: negative numbers (and -0) become +0,
// everything else (NaNs included) passes. It is what max(x, 0) through
// float64 gave, without the two conversions per element.
func reluF16(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := need(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if x.DType != tensor.Float16 {
		return nil, fmt.Errorf("input is %v, want float16", x.DType)
	}
	if err := x.Validate(); err != nil {
		return nil, err
	}
	out, err := output(ctx, in, x.DType, x.Shape, 0)
	if err != nil {
		return nil, err
	}
	src, dst := x.F16(), out.F16()
	ctx.Parallel(len(src), grain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			h := src[i]
			if h&0x8000 != 0 && h&0x7fff <= 0x7c00 {
				h = 0
			}
			dst[i] = h
		}
	})
	return one(out)
}

func sigmoid64(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func reluF32(dst, src []float32) { clampF32(dst, src, 0, float32(math.Inf(1))) }

func sigmoidF32(dst, src []float32) {
	for i, x := range src {
		if x < -80 {
			// expf(-x) overflows; the result is subnormal.
			dst[i] = float32(sigmoid64(float64(x)))
			continue
		}
		dst[i] = 1 / (1 + expf(-x))
	}
}

func tanhF32(dst, src []float32) {
	for i, x := range src {
		dst[i] = float32(math.Tanh(float64(x)))
	}
}

func runUnary(ctx *runtime.Context, u unaryOp, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := need(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	out, err := output(ctx, in, x.DType, x.Shape, 0)
	if err != nil {
		return nil, err
	}
	switch x.DType {
	case tensor.Float32:
		src, dst := x.F32(), out.F32()
		ctx.Parallel(len(src), grain, func(lo, hi int) {
			if u.hot != nil {
				u.hot(dst[lo:hi], src[lo:hi])
				return
			}
			for i := lo; i < hi; i++ {
				dst[i] = float32(u.f(float64(src[i])))
			}
		})
	case tensor.Float64:
		src, dst := x.F64(), out.F64()
		ctx.Parallel(len(src), grain, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				dst[i] = u.f(src[i])
			}
		})
	case tensor.Float16:
		src, dst := x.F16(), out.F16()
		ctx.Parallel(len(src), grain, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				dst[i] = float16.Fromfloat32(float32(u.f(float64(src[i].Float32()))))
			}
		})
	default:
		return nil, fmt.Errorf("input is %v, want a float type", x.DType)
	}
	return one(out)
}

func intUnary(f func(int64) int64) func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		out, err := output(ctx, in, in[0].DType, in[0].Shape, 0)
		if err != nil {
			return nil, err
		}
		switch d := in[0].Data.(type) {
		case []int8:
			mapInt(out.I8(), d, f)
		case []uint8:
			mapInt(out.U8(), d, f)
		case []int16:
			mapInt(out.I16(), d, f)
		case []uint16:
			mapInt(out.U16(), d, f)
		case []int32:
			mapInt(out.I32(), d, f)
		case []uint32:
			mapInt(out.U32(), d, f)
		case []int64:
			mapInt(out.I64(), d, f)
		case []uint64:
			mapInt(out.U64(), d, f)
		default:
			return nil, fmt.Errorf("input is %v, want an integer type", in[0].DType)
		}
		return one(out)
	}
}

func mapInt[T integer](dst, src []T, f func(int64) int64) {
	for i, v := range src {
		dst[i] = T(f(int64(v)))
	}
}

// newClip handles both forms: opset < 11 min/max attributes, and the
// optional min and max inputs of opset 11 on.
func newClip(n *graph.Node, opset int64) (runtime.Kernel, error) {
	var amin, amax float64 = math.Inf(-1), math.Inf(1)
	if opset < 11 {
		lo, err := n.AttrFloat("min", -math.MaxFloat32)
		if err != nil {
			return nil, err
		}
		hi, err := n.AttrFloat("max", math.MaxFloat32)
		if err != nil {
			return nil, err
		}
		amin, amax = float64(lo), float64(hi)
	}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		lo, hi := amin, amax
		for i, p := range []*float64{&lo, &hi} {
			t, err := optional(in, i+1)
			if err != nil {
				return nil, err
			}
			if t == nil {
				continue
			}
			if t.DType != x.DType {
				return nil, fmt.Errorf("bound %d is %v, input is %v", i+1, t.DType, x.DType)
			}
			if *p, err = scalarFloat(t); err != nil {
				return nil, fmt.Errorf("bound %d: %v", i+1, err)
			}
		}
		out, err := output(ctx, in, x.DType, x.Shape, 0)
		if err != nil {
			return nil, err
		}
		switch d := x.Data.(type) {
		case []float32:
			clipF32(ctx, out.F32(), d, lo, hi)
		case []float64:
			clipT(out.F64(), d, lo, hi)
		case []float16.Float16:
			o := out.F16()
			l, h := float32(lo), float32(hi)
			for i, v := range d {
				f := v.Float32()
				if f < l {
					f = l
				}
				if f > h {
					f = h
				}
				o[i] = float16.Fromfloat32(f)
			}
		case []int8:
			clipT(out.I8(), d, lo, hi)
		case []uint8:
			clipT(out.U8(), d, lo, hi)
		case []int16:
			clipT(out.I16(), d, lo, hi)
		case []uint16:
			clipT(out.U16(), d, lo, hi)
		case []int32:
			clipT(out.I32(), d, lo, hi)
		case []uint32:
			clipT(out.U32(), d, lo, hi)
		case []int64:
			clipT(out.I64(), d, lo, hi)
		case []uint64:
			clipT(out.U64(), d, lo, hi)
		default:
			return nil, fmt.Errorf("input is %v", x.DType)
		}
		return one(out)
	}), nil
}

func clipF32(ctx *runtime.Context, dst, src []float32, lo, hi float64) {
	// Clamp in float32 (the bounds are float32 values already); like
	// ONNX Runtime, min is applied first and max second, so min > max
	// gives max.
	l, h := float32(lo), float32(hi)
	if math.IsInf(lo, -1) {
		l = float32(math.Inf(-1))
	}
	if math.IsInf(hi, 1) {
		h = float32(math.Inf(1))
	}
	ctx.Parallel(len(src), grain, func(a, b int) {
		clampF32(dst[a:b], src[a:b], l, h)
	})
}

func clipT[T number](dst, src []T, lo, hi float64) {
	for i, v := range src {
		f := float64(v)
		if f < lo {
			v = T(lo)
		}
		if f > hi || float64(v) > hi {
			v = T(hi)
		}
		dst[i] = v
	}
}
