package basic

import (
	"fmt"
	"math"

	"github.com/x448/float16"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

const (
	opAdd = iota
	opSub
	opMul
	opDiv
	opMax
	opMin
)

func init() {
	// No float16 registrations: a node whose first input is float16 runs
	// the float32 kernel through the runtime's generic fallback, which
	// widens and rounds with table lookups and Giesen's rounding, the
	// same bits as f16wrap's x448 conversions at 3x the speed. f16wrap
	// stays on the other dtypes for a float16 operand that is not the
	// first (Pow's exponent, say).
	for op, code := range map[string]int{"Add": opAdd, "Sub": opSub, "Mul": opMul, "Div": opDiv} {
		reg(op, numericTypes, kf(f16wrap(arithKernel(code))))
	}
	for op, code := range map[string]int{"Max": opMax, "Min": opMin, "Sum": opAdd} {
		reg(op, numericTypes, kf(f16wrap(variadic(code, false))))
	}
	reg("Mean", []tensor.DType{tensor.Float32, tensor.Float64}, kf(f16wrap(variadic(opAdd, true))))
	reg("Pow", []tensor.DType{tensor.Float32, tensor.Float64, tensor.Int32, tensor.Int64}, kf(f16wrap(pow)))
	reg("PRelu", []tensor.DType{tensor.Float32, tensor.Float64}, kf(f16wrap(prelu)))
	cmpTypes := append([]tensor.DType{tensor.Bool}, numericTypes...)
	for op, f := range map[string]func(a, b float64) bool{
		"Less":           func(a, b float64) bool { return a < b },
		"Greater":        func(a, b float64) bool { return a > b },
		"LessOrEqual":    func(a, b float64) bool { return a <= b },
		"GreaterOrEqual": func(a, b float64) bool { return a >= b },
	} {
		reg(op, cmpTypes, kf(f16wrap(compare(f))))
	}
	reg("Equal", cmpTypes, kf(f16wrap(equal)))
	for op, f := range map[string]func(a, b bool) bool{
		"And": func(a, b bool) bool { return a && b },
		"Or":  func(a, b bool) bool { return a || b },
		"Xor": func(a, b bool) bool { return a != b },
	} {
		reg(op, []tensor.DType{tensor.Bool}, kf(logic(f)))
	}
	reg("Not", []tensor.DType{tensor.Bool}, kf(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		if in[0].DType != tensor.Bool {
			return nil, fmt.Errorf("input is %v, want bool", in[0].DType)
		}
		out := tensor.MustNew(tensor.Bool, in[0].Shape)
		o := out.Bools()
		for i, v := range in[0].Bools() {
			o[i] = !v
		}
		return one(out)
	}))
	regAny("Where", func(*graph.Node, int64) (runtime.Kernel, error) { return runtime.KernelFunc(where), nil })
}

// f16wrap runs a float32 kernel on float16 data: float16 inputs are widened
// to float32 (exact), float32 outputs rounded back to float16. Inputs of
// other types pass through.
func f16wrap(k runtime.KernelFunc) runtime.KernelFunc {
	return func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		any16 := false
		for _, t := range in {
			if t != nil && t.DType == tensor.Float16 {
				any16 = true
			}
		}
		if !any16 {
			return k(ctx, in)
		}
		wide := make([]*tensor.Tensor, len(in))
		for i, t := range in {
			wide[i] = t
			if t != nil && t.DType == tensor.Float16 {
				if err := t.Validate(); err != nil {
					return nil, fmt.Errorf("input %d: %v", i, err)
				}
				f := make([]float32, t.Len())
				for j, v := range t.F16() {
					f[j] = v.Float32()
				}
				wide[i] = tensor.FromFloat32(t.Shape, f)
			}
		}
		outs, err := k(ctx, wide)
		if err != nil {
			return nil, err
		}
		for i, t := range outs {
			if t != nil && t.DType == tensor.Float32 {
				h := make([]float16.Float16, t.Len())
				for j, v := range t.F32() {
					h[j] = float16.Fromfloat32(v)
				}
				outs[i] = &tensor.Tensor{DType: tensor.Float16, Shape: t.Shape, Data: h}
			}
		}
		return outs, nil
	}
}

func arithKernel(code int) runtime.KernelFunc {
	return func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		out, err := arith(ctx, code, in[0], in[1], ctx.Reusable(0), ctx.Reusable(1))
		if err != nil {
			return nil, err
		}
		return one(out)
	}
}

// variadic folds Max, Min, Sum (and Mean: Sum then divide) over its inputs.
func variadic(code int, mean bool) runtime.KernelFunc {
	return func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if len(in) == 0 {
			return nil, fmt.Errorf("needs at least one input")
		}
		if err := need(in, len(in)); err != nil {
			return nil, err
		}
		acc := in[0]
		for i, t := range in[1:] {
			var err error
			// After the first fold the accumulator is this kernel's own.
			if acc, err = arith(ctx, code, acc, t, i > 0 || ctx.Reusable(0), ctx.Reusable(i+1)); err != nil {
				return nil, err
			}
		}
		if len(in) == 1 {
			acc = acc.Clone()
		}
		if mean {
			div := tensor.Scalar(float32(len(in)))
			if acc.DType == tensor.Float64 {
				div = &tensor.Tensor{DType: tensor.Float64, Shape: []int{}, Data: []float64{float64(len(in))}}
			}
			var err error
			if acc, err = arith(ctx, opDiv, acc, div, true, false); err != nil {
				return nil, err
			}
		}
		return one(acc)
	}
}

// arith is a ⊙ b with broadcasting for Add, Sub, Mul, Div, Max, Min. The
// result is written over a (or b) when reuseA (reuseB) allows it and the
// operand already has the output's shape: every element is read before
// its own position is written.
func arith(ctx *runtime.Context, code int, a, b *tensor.Tensor, reuseA, reuseB bool) (*tensor.Tensor, error) {
	if a.DType != b.DType {
		return nil, fmt.Errorf("input types differ: %v and %v", a.DType, b.DType)
	}
	bc, err := newBcast(a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	var out *tensor.Tensor
	switch {
	case reuseA && tensor.SameShape(a.Shape, bc.out):
		out = a
	case reuseB && tensor.SameShape(b.Shape, bc.out):
		out = b
	default:
		if out, err = ctx.New(a.DType, bc.out); err != nil {
			return nil, err
		}
	}
	switch x := a.Data.(type) {
	case []float32:
		arithT(ctx, bc, code, out.F32(), x, b.F32())
	case []float64:
		arithT(ctx, bc, code, out.F64(), x, b.F64())
	case []int8:
		err = arithInt(ctx, bc, code, out.I8(), x, b.I8())
	case []uint8:
		err = arithInt(ctx, bc, code, out.U8(), x, b.U8())
	case []int16:
		err = arithInt(ctx, bc, code, out.I16(), x, b.I16())
	case []uint16:
		err = arithInt(ctx, bc, code, out.U16(), x, b.U16())
	case []int32:
		err = arithInt(ctx, bc, code, out.I32(), x, b.I32())
	case []uint32:
		err = arithInt(ctx, bc, code, out.U32(), x, b.U32())
	case []int64:
		err = arithInt(ctx, bc, code, out.I64(), x, b.I64())
	case []uint64:
		err = arithInt(ctx, bc, code, out.U64(), x, b.U64())
	default:
		return nil, fmt.Errorf("unsupported input type %v", a.DType)
	}
	return out, err
}

func arithInt[T integer](ctx *runtime.Context, bc *bcast, code int, dst, a, b []T) error {
	if code == opDiv {
		for _, v := range b {
			if v == 0 {
				return fmt.Errorf("integer division by zero")
			}
		}
	}
	arithT(ctx, bc, code, dst, a, b)
	return nil
}

func arithT[T number](ctx *runtime.Context, bc *bcast, code int, dst, a, b []T) {
	if d, ok := any(dst).([]float32); ok {
		arithF32(ctx, bc, code, d, any(a).([]float32), any(b).([]float32))
		return
	}
	if len(a) == len(dst) && len(b) == len(dst) {
		// Same shape: one flat loop, split over threads.
		ctx.Parallel(len(dst), grain, func(lo, hi int) {
			arithRow(code, dst[lo:hi], a[lo:hi], 1, b[lo:hi], 1)
		})
		return
	}
	sa, sb := bc.step(0), bc.step(1)
	n := bc.inner
	bc.rows(ctx, func(off int, offs []int) {
		arithRow(code, dst[off:off+n], a[offs[0]:], sa, b[offs[1]:], sb)
	})
}

func arithF32(ctx *runtime.Context, bc *bcast, code int, dst, a, b []float32) {
	if len(a) == len(dst) && len(b) == len(dst) {
		ctx.Parallel(len(dst), grain, func(lo, hi int) {
			arithRowF32(code, dst[lo:hi], a[lo:hi], 1, b[lo:hi], 1)
		})
		return
	}
	sa, sb := bc.step(0), bc.step(1)
	n := bc.inner
	bc.rows(ctx, func(off int, offs []int) {
		arithRowF32(code, dst[off:off+n], a[offs[0]:], sa, b[offs[1]:], sb)
	})
}

// arithRow computes len(dst) elements; a and b advance by sa and sb (0 or 1).
func arithRow[T number](code int, dst, a []T, sa int, b []T, sb int) {
	switch {
	case sa == 1 && sb == 1:
		a, b = a[:len(dst)], b[:len(dst)]
		switch code {
		case opAdd:
			for i := range dst {
				dst[i] = a[i] + b[i]
			}
		case opSub:
			for i := range dst {
				dst[i] = a[i] - b[i]
			}
		case opMul:
			for i := range dst {
				dst[i] = a[i] * b[i]
			}
		case opDiv:
			for i := range dst {
				dst[i] = a[i] / b[i]
			}
		default:
			for i := range dst {
				dst[i] = minmax(code, a[i], b[i])
			}
		}
	case sa == 1:
		a = a[:len(dst)]
		y := b[0]
		switch code {
		case opAdd:
			for i := range dst {
				dst[i] = a[i] + y
			}
		case opSub:
			for i := range dst {
				dst[i] = a[i] - y
			}
		case opMul:
			for i := range dst {
				dst[i] = a[i] * y
			}
		case opDiv:
			for i := range dst {
				dst[i] = a[i] / y
			}
		default:
			for i := range dst {
				dst[i] = minmax(code, a[i], y)
			}
		}
	case sb == 1:
		b = b[:len(dst)]
		x := a[0]
		switch code {
		case opAdd:
			for i := range dst {
				dst[i] = x + b[i]
			}
		case opSub:
			for i := range dst {
				dst[i] = x - b[i]
			}
		case opMul:
			for i := range dst {
				dst[i] = x * b[i]
			}
		case opDiv:
			for i := range dst {
				dst[i] = x / b[i]
			}
		default:
			for i := range dst {
				dst[i] = minmax(code, x, b[i])
			}
		}
	default:
		var v T
		x, y := a[0], b[0]
		switch code {
		case opAdd:
			v = x + y
		case opSub:
			v = x - y
		case opMul:
			v = x * y
		case opDiv:
			v = x / y
		default:
			v = minmax(code, x, y)
		}
		for i := range dst {
			dst[i] = v
		}
	}
}

// minmax propagates NaN as numpy's maximum/minimum do.
func minmax[T number](code int, x, y T) T {
	if x != x {
		return x
	}
	if y != y {
		return y
	}
	if (code == opMax) == (x > y) {
		return x
	}
	return y
}

// pow keeps the base's type; the exponent may be any numeric type.
func pow(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := need(in, 2); err != nil {
		return nil, err
	}
	x, y := in[0], in[1]
	bc, err := newBcast(x.Shape, y.Shape)
	if err != nil {
		return nil, err
	}
	xs, err := x.AsFloat64()
	if err != nil {
		return nil, err
	}
	ys, err := y.AsFloat64()
	if err != nil {
		return nil, err
	}
	if err := ctx.CheckAlloc(x.DType, bc.out); err != nil {
		return nil, err
	}
	out, err := tensor.New(x.DType, bc.out)
	if err != nil {
		return nil, err
	}
	r := make([]float64, bc.n)
	sa, sb, n := bc.step(0), bc.step(1), bc.inner
	bc.rows(ctx, func(off int, offs []int) {
		for j := 0; j < n; j++ {
			r[off+j] = math.Pow(xs[offs[0]+j*sa], ys[offs[1]+j*sb])
		}
	})
	switch o := out.Data.(type) {
	case []float32:
		for i, v := range r {
			o[i] = float32(v)
		}
	case []float64:
		copy(o, r)
	case []int32:
		for i, v := range r {
			o[i] = int32(v)
		}
	case []int64:
		for i, v := range r {
			o[i] = int64(v)
		}
	default:
		return nil, fmt.Errorf("unsupported base type %v", x.DType)
	}
	return one(out)
}

func prelu(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := need(in, 2); err != nil {
		return nil, err
	}
	x, s := in[0], in[1]
	if x.DType != s.DType || (x.DType != tensor.Float32 && x.DType != tensor.Float64) {
		return nil, fmt.Errorf("input types %v and %v, want float", x.DType, s.DType)
	}
	sShape := s.Shape
	if len(sShape) == 1 && len(x.Shape) > 2 && sShape[0] == x.Shape[1] && sShape[0] != x.Shape[len(x.Shape)-1] {
		// Opset-6 PRelu took a per-channel slope [C] (the loader raises
		// such models to opset 9 without rewriting it); numpy broadcasting
		// would fail on it, so read it as [C, 1, ..., 1].
		sShape = append([]int{sShape[0]}, make([]int, len(x.Shape)-2)...)
		for i := 1; i < len(sShape); i++ {
			sShape[i] = 1
		}
	}
	bc, err := newBcast(x.Shape, sShape)
	if err != nil {
		return nil, err
	}
	if !tensor.SameShape(bc.out, x.Shape) {
		return nil, fmt.Errorf("slope shape %v does not broadcast to input shape %v", s.Shape, x.Shape)
	}
	if err := ctx.CheckAlloc(x.DType, bc.out); err != nil {
		return nil, err
	}
	out, err := tensor.New(x.DType, bc.out)
	if err != nil {
		return nil, err
	}
	sa, sb, n := bc.step(0), bc.step(1), bc.inner
	if x.DType == tensor.Float32 {
		xd, sd, od := x.F32(), s.F32(), out.F32()
		bc.rows(ctx, func(off int, offs []int) {
			for j := 0; j < n; j++ {
				v := xd[offs[0]+j*sa]
				if v < 0 {
					v *= sd[offs[1]+j*sb]
				}
				od[off+j] = v
			}
		})
	} else {
		xd, sd, od := x.F64(), s.F64(), out.F64()
		bc.rows(ctx, func(off int, offs []int) {
			for j := 0; j < n; j++ {
				v := xd[offs[0]+j*sa]
				if v < 0 {
					v *= sd[offs[1]+j*sb]
				}
				od[off+j] = v
			}
		})
	}
	return one(out)
}

func compare(f func(a, b float64) bool) runtime.KernelFunc {
	return func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		a, b := in[0], in[1]
		if a.DType != b.DType {
			return nil, fmt.Errorf("input types differ: %v and %v", a.DType, b.DType)
		}
		switch x := a.Data.(type) {
		case []int64:
			// int64 beyond 2^53 does not survive float64.
			y := b.I64()
			return cmpT(ctx, a.Shape, b.Shape, x, y, func(p, q int64) bool { return f(float64(cmp64(p, q)), 0) })
		case []uint64:
			y := b.U64()
			return cmpT(ctx, a.Shape, b.Shape, x, y, func(p, q uint64) bool {
				c := 0
				if p < q {
					c = -1
				} else if p > q {
					c = 1
				}
				return f(float64(c), 0)
			})
		}
		xs, err := a.AsFloat64()
		if err != nil {
			return nil, err
		}
		ys, err := b.AsFloat64()
		if err != nil {
			return nil, err
		}
		return cmpT(ctx, a.Shape, b.Shape, xs, ys, f)
	}
}

func cmp64(p, q int64) int {
	switch {
	case p < q:
		return -1
	case p > q:
		return 1
	}
	return 0
}

func equal(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := need(in, 2); err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	if a.DType != b.DType {
		return nil, fmt.Errorf("input types differ: %v and %v", a.DType, b.DType)
	}
	switch x := a.Data.(type) {
	case []int64:
		return cmpT(ctx, a.Shape, b.Shape, x, b.I64(), func(p, q int64) bool { return p == q })
	case []uint64:
		return cmpT(ctx, a.Shape, b.Shape, x, b.U64(), func(p, q uint64) bool { return p == q })
	case []string:
		return cmpT(ctx, a.Shape, b.Shape, x, b.Strings(), func(p, q string) bool { return p == q })
	}
	xs, err := a.AsFloat64()
	if err != nil {
		return nil, err
	}
	ys, err := b.AsFloat64()
	if err != nil {
		return nil, err
	}
	return cmpT(ctx, a.Shape, b.Shape, xs, ys, func(p, q float64) bool { return p == q })
}

func cmpT[T any](ctx *runtime.Context, sa, sb []int, x, y []T, f func(a, b T) bool) ([]*tensor.Tensor, error) {
	bc, err := newBcast(sa, sb)
	if err != nil {
		return nil, err
	}
	out, err := ctx.New(tensor.Bool, bc.out)
	if err != nil {
		return nil, err
	}
	o := out.Bools()
	da, db, n := bc.step(0), bc.step(1), bc.inner
	bc.rows(ctx, func(off int, offs []int) {
		for j := 0; j < n; j++ {
			o[off+j] = f(x[offs[0]+j*da], y[offs[1]+j*db])
		}
	})
	return one(out)
}

func logic(f func(a, b bool) bool) runtime.KernelFunc {
	return func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		if in[0].DType != tensor.Bool || in[1].DType != tensor.Bool {
			return nil, fmt.Errorf("inputs are %v and %v, want bool", in[0].DType, in[1].DType)
		}
		return cmpT(ctx, in[0].Shape, in[1].Shape, in[0].Bools(), in[1].Bools(), f)
	}
}

func where(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := need(in, 3); err != nil {
		return nil, err
	}
	c, x, y := in[0], in[1], in[2]
	if c.DType != tensor.Bool {
		return nil, fmt.Errorf("condition is %v, want bool", c.DType)
	}
	if x.DType != y.DType {
		return nil, fmt.Errorf("X is %v and Y is %v", x.DType, y.DType)
	}
	bc, err := newBcast(c.Shape, x.Shape, y.Shape)
	if err != nil {
		return nil, err
	}
	xb, es, err := raw(x)
	if err != nil {
		return nil, err
	}
	yb, _, _ := raw(y)
	out, ob, err := newRaw(ctx, x.DType, bc.out)
	if err != nil {
		return nil, err
	}
	cd := c.Bools()
	sc, sx, sy, n := bc.step(0), bc.step(1), bc.step(2), bc.inner
	bc.rows(ctx, func(off int, offs []int) {
		for j := 0; j < n; j++ {
			var src []byte
			var k int
			if cd[offs[0]+j*sc] {
				src, k = xb, offs[1]+j*sx
			} else {
				src, k = yb, offs[2]+j*sy
			}
			copy(ob[(off+j)*es:(off+j+1)*es], src[k*es:(k+1)*es])
		}
	})
	return one(out)
}
