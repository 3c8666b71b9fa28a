package basic

import (
	"fmt"
	"math"
	"sort"
	"unsafe"

	"github.com/x448/float16"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// Less common ops that exported CNN and detection models still use:
// pixel shuffles, index gathers and scatters, CumSum, Mod, Trilu, OneHot,
// NonZero, IsNaN/IsInf, Shrink, LRN and MeanVarianceNormalization.

func init() {
	regAny("DepthToSpace", func(n *graph.Node, _ int64) (runtime.Kernel, error) { return newSpaceDepth(n, true) })
	regAny("SpaceToDepth", func(n *graph.Node, _ int64) (runtime.Kernel, error) { return newSpaceDepth(n, false) })
	regAny("GatherElements", newGatherElements)
	regAny("ScatterElements", newScatterElements)
	regAny("Scatter", newScatterElements) // opset 9-10 name of ScatterElements
	regAny("GatherND", newGatherND)
	regAny("ScatterND", newScatterND)
	regAny("Trilu", newTrilu)
	regAny("NonZero", kf(nonZero))
	regAny("OneHot", newOneHot)
	reg("CumSum", numericTypes, newCumSum)
	reg("Mod", numericTypes, func(n *graph.Node, opset int64) (runtime.Kernel, error) {
		k, err := newMod(n, opset)
		if err != nil {
			return nil, err
		}
		return f16wrap(k.(runtime.KernelFunc)), nil
	})
	// Float16 comes through the runtime's fallback (see binary.go).
	floats := []tensor.DType{tensor.Float32, tensor.Float64}
	reg("IsNaN", floats, kf(f16wrap(isClass(func(v float64) bool { return v != v }))))
	reg("IsInf", floats, newIsInf)
	reg("Shrink", floats, newShrink)
	reg("LRN", []tensor.DType{tensor.Float32}, newLRN)
	reg("MeanVarianceNormalization", []tensor.DType{tensor.Float32}, newMVN)
}

// permuted reshapes x to shape, permutes it and reshapes to out.
func permuted(ctx *runtime.Context, x *tensor.Tensor, shape []int, perm []int, out []int) (*tensor.Tensor, error) {
	t, err := transpose(ctx, view(x, shape), perm)
	if err != nil {
		return nil, err
	}
	t.Shape = out
	return t, nil
}

func newSpaceDepth(n *graph.Node, toSpace bool) (runtime.Kernel, error) {
	bs, err := n.AttrInt("blocksize", 0)
	if err != nil {
		return nil, err
	}
	if bs < 1 || bs > 1<<16 {
		return nil, fmt.Errorf("blocksize %d", bs)
	}
	mode, err := n.AttrString("mode", "DCR")
	if err != nil {
		return nil, err
	}
	if mode != "DCR" && mode != "CRD" {
		return nil, fmt.Errorf("mode %q", mode)
	}
	b := int(bs)
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if len(x.Shape) != 4 {
			return nil, fmt.Errorf("input must be 4-D, got %v", x.Shape)
		}
		N, C, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
		var out *tensor.Tensor
		var err error
		if toSpace {
			if C%(b*b) != 0 {
				return nil, fmt.Errorf("channels %d not divisible by blocksize² %d", C, b*b)
			}
			c := C / (b * b)
			o := []int{N, c, H * b, W * b}
			if mode == "DCR" {
				out, err = permuted(ctx, x, []int{N, b, b, c, H, W}, []int{0, 3, 4, 1, 5, 2}, o)
			} else {
				out, err = permuted(ctx, x, []int{N, c, b, b, H, W}, []int{0, 1, 4, 2, 5, 3}, o)
			}
		} else {
			if H%b != 0 || W%b != 0 {
				return nil, fmt.Errorf("spatial dims %dx%d not divisible by blocksize %d", H, W, b)
			}
			out, err = permuted(ctx, x, []int{N, C, H / b, b, W / b, b}, []int{0, 3, 5, 1, 2, 4}, []int{N, C * b * b, H / b, W / b})
		}
		if err != nil {
			return nil, err
		}
		return one(out)
	}), nil
}

// elemIndex maps an index along axis (negative counts from the end) or
// reports it out of range.
func elemIndex(i int64, dim int) (int, error) {
	if i < -int64(dim) || i >= int64(dim) {
		return 0, fmt.Errorf("index %d out of range for dim %d", i, dim)
	}
	if i < 0 {
		i += int64(dim)
	}
	return int(i), nil
}

// axisOffsets walks the row-major positions of an index tensor of the
// given shape and calls fn with each flat position and the matching data
// offset: the same coordinates, except along axis where the index value
// (checked against dataDim) is used. GatherElements and ScatterElements
// share it.
func axisOffsets(shape []int, axis int, dataStrides []int, idx []int64, dataDim int, fn func(flat, dataOff int)) error {
	r := len(shape)
	pos := make([]int, r)
	for flat := range idx {
		k, err := elemIndex(idx[flat], dataDim)
		if err != nil {
			return err
		}
		off := 0
		for d := 0; d < r; d++ {
			if d == axis {
				off += k * dataStrides[d]
			} else {
				off += pos[d] * dataStrides[d]
			}
		}
		fn(flat, off)
		for d := r - 1; d >= 0; d-- {
			pos[d]++
			if pos[d] < shape[d] {
				break
			}
			pos[d] = 0
		}
	}
	return nil
}

func newGatherElements(n *graph.Node, _ int64) (runtime.Kernel, error) {
	axis, err := n.AttrInt("axis", 0)
	if err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x, it := in[0], in[1]
		ax, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return nil, err
		}
		if len(it.Shape) != len(x.Shape) {
			return nil, fmt.Errorf("indices rank %d, data rank %d", len(it.Shape), len(x.Shape))
		}
		for d := range it.Shape {
			if d != ax && it.Shape[d] > x.Shape[d] {
				return nil, fmt.Errorf("indices shape %v exceeds data shape %v", it.Shape, x.Shape)
			}
		}
		idx, err := ints(it)
		if err != nil {
			return nil, err
		}
		src, es, err := raw(x)
		if err != nil {
			return nil, err
		}
		out, dst, err := newRaw(ctx, x.DType, it.Shape)
		if err != nil {
			return nil, err
		}
		err = axisOffsets(it.Shape, ax, stridesOf(x.Shape), idx, x.Shape[ax], func(flat, off int) {
			copy(dst[flat*es:(flat+1)*es], src[off*es:(off+1)*es])
		})
		if err != nil {
			return nil, err
		}
		return one(out)
	}), nil
}

// scatterReduce returns, for the reduction attribute of ScatterElements and
// ScatterND, a function that picks the combiner for the data's dtype: it
// folds one update element into one data element (raw bytes of that
// dtype). Every numeric dtype and float16 reduce; integers wrap on
// overflow as ONNX Runtime's do. Other dtypes (bool, string) only accept
// reduction "none": an error, never a silent copy.
func scatterReduce(n *graph.Node) (func(dt tensor.DType) (func(dst, upd []byte), error), error) {
	red, err := n.AttrString("reduction", "none")
	if err != nil {
		return nil, err
	}
	switch red {
	case "none", "add", "mul", "max", "min":
	default:
		return nil, fmt.Errorf("reduction %q", red)
	}
	return func(dt tensor.DType) (func(dst, upd []byte), error) {
		if red == "none" {
			return func(dst, upd []byte) { copy(dst, upd) }, nil
		}
		var f func(dst, upd []byte)
		switch dt {
		case tensor.Float32:
			f = reduceFn[float32](red)
		case tensor.Float64:
			f = reduceFn[float64](red)
		case tensor.Float16:
			// Float16 models (qtool convert --fp16-full) scatter-add too:
			// combined in float32 and rounded, like the float16 fallback.
			g := reduceFn[float32](red)
			f = func(dst, upd []byte) {
				d, u := as[float16.Float16](dst), as[float16.Float16](upd)
				a, b := d[0].Float32(), u[0].Float32()
				g(asBytes(&a), asBytes(&b))
				d[0] = float16.Fromfloat32(a)
			}
		case tensor.Int8:
			f = reduceFn[int8](red)
		case tensor.Uint8:
			f = reduceFn[uint8](red)
		case tensor.Int16:
			f = reduceFn[int16](red)
		case tensor.Uint16:
			f = reduceFn[uint16](red)
		case tensor.Int32:
			f = reduceFn[int32](red)
		case tensor.Uint32:
			f = reduceFn[uint32](red)
		case tensor.Int64:
			f = reduceFn[int64](red)
		case tensor.Uint64:
			f = reduceFn[uint64](red)
		default:
			return nil, fmt.Errorf("reduction %q is not defined for %v data", red, dt)
		}
		return f, nil
	}, nil
}

type scatterNumber interface {
	~int8 | ~uint8 | ~int16 | ~uint16 | ~int32 | ~uint32 | ~int64 | ~uint64 | ~float32 | ~float64
}

// reduceFn folds one T update into one T element in T's own arithmetic
// (float32 adds in float32, not through float64 and back).
func reduceFn[T scatterNumber](red string) func(dst, upd []byte) {
	switch red {
	case "add":
		return func(dst, upd []byte) { as[T](dst)[0] += as[T](upd)[0] }
	case "mul":
		return func(dst, upd []byte) { as[T](dst)[0] *= as[T](upd)[0] }
	case "max":
		return func(dst, upd []byte) { d := as[T](dst); d[0] = max(d[0], as[T](upd)[0]) }
	}
	return func(dst, upd []byte) { d := as[T](dst); d[0] = min(d[0], as[T](upd)[0]) }
}

func asBytes(f *float32) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(f)), 4) }

func newScatterElements(n *graph.Node, _ int64) (runtime.Kernel, error) {
	axis, err := n.AttrInt("axis", 0)
	if err != nil {
		return nil, err
	}
	reduceFor, err := scatterReduce(n)
	if err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, err
		}
		x, it, u := in[0], in[1], in[2]
		ax, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return nil, err
		}
		if u.DType != x.DType || !tensor.SameShape(it.Shape, u.Shape) || len(it.Shape) != len(x.Shape) {
			return nil, fmt.Errorf("updates %v and indices %v must match each other and data %v", u, it.Shape, x)
		}
		for d := range it.Shape {
			if d != ax && it.Shape[d] > x.Shape[d] {
				return nil, fmt.Errorf("indices shape %v exceeds data shape %v", it.Shape, x.Shape)
			}
		}
		idx, err := ints(it)
		if err != nil {
			return nil, err
		}
		out := x.Clone()
		dst, es, err := raw(out)
		if err != nil {
			return nil, err
		}
		combine, err := reduceFor(x.DType)
		if err != nil {
			return nil, err
		}
		ub, _, _ := raw(u)
		err = axisOffsets(it.Shape, ax, stridesOf(x.Shape), idx, x.Shape[ax], func(flat, off int) {
			combine(dst[off*es:(off+1)*es], ub[flat*es:(flat+1)*es])
		})
		if err != nil {
			return nil, err
		}
		return one(out)
	}), nil
}

func newGatherND(n *graph.Node, _ int64) (runtime.Kernel, error) {
	bd, err := n.AttrInt("batch_dims", 0)
	if err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x, it := in[0], in[1]
		b := int(bd)
		q := len(it.Shape)
		if q < 1 || b < 0 || b >= q || b > len(x.Shape) {
			return nil, fmt.Errorf("batch_dims %d with indices %v and data %v", bd, it.Shape, x.Shape)
		}
		k := it.Shape[q-1]
		if b+k > len(x.Shape) {
			return nil, fmt.Errorf("index tuples of %d with batch_dims %d exceed data rank %d", k, b, len(x.Shape))
		}
		for d := 0; d < b; d++ {
			if it.Shape[d] != x.Shape[d] {
				return nil, fmt.Errorf("batch dims of indices %v and data %v differ", it.Shape, x.Shape)
			}
		}
		idx, err := ints(it)
		if err != nil {
			return nil, err
		}
		shape := append(append([]int{}, it.Shape[:q-1]...), x.Shape[b+k:]...)
		src, es, err := raw(x)
		if err != nil {
			return nil, err
		}
		out, dst, err := newRaw(ctx, x.DType, shape)
		if err != nil {
			return nil, err
		}
		xs := stridesOf(x.Shape)
		slice := prod(x.Shape[b+k:]) * es
		batches := prod(it.Shape[:b])
		per := prod(it.Shape[b : q-1])
		batchStride := 0
		if b > 0 {
			batchStride = xs[b-1]
		}
		for bi := 0; bi < batches; bi++ {
			for j := 0; j < per; j++ {
				t := (bi*per + j) * k
				off := bi * batchStride
				for d := 0; d < k; d++ {
					v, err := elemIndex(idx[t+d], x.Shape[b+d])
					if err != nil {
						return nil, err
					}
					off += v * xs[b+d]
				}
				o := (bi*per + j) * slice
				copy(dst[o:o+slice], src[off*es:off*es+slice])
			}
		}
		return one(out)
	}), nil
}

func newScatterND(n *graph.Node, _ int64) (runtime.Kernel, error) {
	reduceFor, err := scatterReduce(n)
	if err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, err
		}
		x, it, u := in[0], in[1], in[2]
		q := len(it.Shape)
		if q < 1 || u.DType != x.DType {
			return nil, fmt.Errorf("indices %v, updates %v, data %v", it.Shape, u, x)
		}
		k := it.Shape[q-1]
		if k > len(x.Shape) {
			return nil, fmt.Errorf("index tuples of %d for data rank %d", k, len(x.Shape))
		}
		want := append(append([]int{}, it.Shape[:q-1]...), x.Shape[k:]...)
		if !tensor.SameShape(u.Shape, want) {
			return nil, fmt.Errorf("updates shape %v, want %v", u.Shape, want)
		}
		idx, err := ints(it)
		if err != nil {
			return nil, err
		}
		out := x.Clone()
		dst, es, err := raw(out)
		if err != nil {
			return nil, err
		}
		combine, err := reduceFor(x.DType)
		if err != nil {
			return nil, err
		}
		ub, _, _ := raw(u)
		xs := stridesOf(x.Shape)
		slice := prod(x.Shape[k:])
		for j := 0; j < prod(it.Shape[:q-1]); j++ {
			off := 0
			for d := 0; d < k; d++ {
				v, err := elemIndex(idx[j*k+d], x.Shape[d])
				if err != nil {
					return nil, err
				}
				off += v * xs[d]
			}
			for e := 0; e < slice; e++ {
				combine(dst[(off+e)*es:(off+e+1)*es], ub[(j*slice+e)*es:(j*slice+e+1)*es])
			}
		}
		return one(out)
	}), nil
}

func newTrilu(n *graph.Node, _ int64) (runtime.Kernel, error) {
	upper, err := n.AttrInt("upper", 1)
	if err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		r := len(x.Shape)
		if r < 2 {
			return nil, fmt.Errorf("input must have rank >= 2, got %v", x.Shape)
		}
		k := int64(0)
		if t, err := optional(in, 1); err != nil {
			return nil, err
		} else if t != nil {
			v, err := ints(t)
			if err != nil || len(v) != 1 {
				return nil, fmt.Errorf("k must be one integer")
			}
			k = v[0]
		}
		out := x.Clone()
		dst, es, err := raw(out)
		if err != nil {
			return nil, err
		}
		rows, cols := x.Shape[r-2], x.Shape[r-1]
		zero := make([]byte, es)
		for m := 0; m < prod(x.Shape[:r-2]); m++ {
			for i := 0; i < rows; i++ {
				for j := 0; j < cols; j++ {
					d := int64(j) - int64(i)
					keep := d >= k
					if upper == 0 {
						keep = d <= k
					}
					if !keep {
						o := ((m*rows+i)*cols + j) * es
						copy(dst[o:o+es], zero)
					}
				}
			}
		}
		return one(out)
	}), nil
}

func nonZero(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := need(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	v, err := x.AsFloat64()
	if err != nil {
		return nil, err
	}
	var hits []int
	for i, f := range v {
		if f != 0 {
			hits = append(hits, i)
		}
	}
	r := len(x.Shape)
	shape := x.Shape
	if r == 0 {
		// A scalar is treated as a 1-element vector (ONNX Runtime's choice).
		r, shape = 1, []int{1}
	}
	out := tensor.MustNew(tensor.Int64, []int{r, len(hits)})
	o := out.I64()
	st := stridesOf(shape)
	for j, h := range hits {
		for d := 0; d < r; d++ {
			o[d*len(hits)+j] = int64(h / st[d] % shape[d])
		}
	}
	return one(out)
}

func newOneHot(n *graph.Node, _ int64) (runtime.Kernel, error) {
	axis, err := n.AttrInt("axis", -1)
	if err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, err
		}
		ind, depthT, vals := in[0], in[1], in[2]
		df, err := scalarFloat(depthT)
		if err != nil {
			return nil, fmt.Errorf("depth: %v", err)
		}
		if df < 1 || df > tensor.MaxElements || math.IsNaN(df) {
			return nil, fmt.Errorf("depth %v", df)
		}
		depth := int(df)
		if vals.Len() != 2 {
			return nil, fmt.Errorf("values must have 2 elements")
		}
		iv, err := ind.AsFloat64()
		if err != nil {
			return nil, err
		}
		r := len(ind.Shape) + 1
		ax, err := normAxis(axis, r)
		if err != nil {
			return nil, err
		}
		shape := append(append(append([]int{}, ind.Shape[:ax]...), depth), ind.Shape[ax:]...)
		src, es, err := raw(vals)
		if err != nil {
			return nil, err
		}
		out, dst, err := newRaw(ctx, vals.DType, shape)
		if err != nil {
			return nil, err
		}
		for i := 0; i < len(dst); i += es {
			copy(dst[i:i+es], src[:es])
		}
		outer, inner := prod(ind.Shape[:ax]), prod(ind.Shape[ax:])
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				v := int64(iv[o*inner+i])
				if v < 0 {
					v += int64(depth)
				}
				if v < 0 || v >= int64(depth) {
					continue // out-of-range indices give an all-off row
				}
				p := ((o*depth+int(v))*inner + i) * es
				copy(dst[p:p+es], src[es:2*es])
			}
		}
		return one(out)
	}), nil
}

func newCumSum(n *graph.Node, _ int64) (runtime.Kernel, error) {
	excl, err := n.AttrInt("exclusive", 0)
	if err != nil {
		return nil, err
	}
	rev, err := n.AttrInt("reverse", 0)
	if err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x := in[0]
		a, err := ints(in[1])
		if err != nil || len(a) != 1 {
			return nil, fmt.Errorf("axis must be one integer")
		}
		ax, err := normAxis(a[0], len(x.Shape))
		if err != nil {
			return nil, err
		}
		out, err := tensor.New(x.DType, x.Shape)
		if err != nil {
			return nil, err
		}
		outer, rn, inner := prod(x.Shape[:ax]), x.Shape[ax], prod(x.Shape[ax+1:])
		switch d := x.Data.(type) {
		case []float32:
			cumsum(out.F32(), d, outer, rn, inner, excl != 0, rev != 0)
		case []float64:
			cumsum(out.F64(), d, outer, rn, inner, excl != 0, rev != 0)
		case []int32:
			cumsum(out.I32(), d, outer, rn, inner, excl != 0, rev != 0)
		case []int64:
			cumsum(out.I64(), d, outer, rn, inner, excl != 0, rev != 0)
		case []uint32:
			cumsum(out.U32(), d, outer, rn, inner, excl != 0, rev != 0)
		case []uint64:
			cumsum(out.U64(), d, outer, rn, inner, excl != 0, rev != 0)
		default:
			return nil, fmt.Errorf("input type %v is not supported", x.DType)
		}
		return one(out)
	}), nil
}

func cumsum[T number](dst, src []T, outer, rn, inner int, excl, rev bool) {
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			var acc T
			for jj := 0; jj < rn; jj++ {
				j := jj
				if rev {
					j = rn - 1 - jj
				}
				p := (o*rn+j)*inner + i
				if excl {
					dst[p] = acc
					acc += src[p]
				} else {
					acc += src[p]
					dst[p] = acc
				}
			}
		}
	}
}

func newMod(n *graph.Node, _ int64) (runtime.Kernel, error) {
	fmodAttr, err := n.AttrInt("fmod", 0)
	if err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		a, b := in[0], in[1]
		if a.DType != b.DType {
			return nil, fmt.Errorf("input types differ: %v and %v", a.DType, b.DType)
		}
		if a.DType.IsFloat() && fmodAttr == 0 {
			return nil, fmt.Errorf("fmod must be 1 for float inputs")
		}
		bc, err := newBcast(a.Shape, b.Shape)
		if err != nil {
			return nil, err
		}
		// The float path works in float64 whatever the input type.
		if err := ctx.CheckAlloc(tensor.Float64, bc.out); err != nil {
			return nil, err
		}
		if a.DType.IsFloat() {
			x, _ := a.AsFloat64()
			y, _ := b.AsFloat64()
			r := make([]float64, bc.n)
			sa, sb, k := bc.step(0), bc.step(1), bc.inner
			bc.rows(ctx, func(off int, offs []int) {
				for j := 0; j < k; j++ {
					r[off+j] = math.Mod(x[offs[0]+j*sa], y[offs[1]+j*sb])
				}
			})
			out, err := cast(&tensor.Tensor{DType: tensor.Float64, Shape: bc.out, Data: r}, a.DType)
			if err != nil {
				return nil, err
			}
			return one(out)
		}
		if a.DType == tensor.Uint64 {
			x, y := a.U64(), b.U64()
			for _, v := range y {
				if v == 0 {
					return nil, fmt.Errorf("integer modulo by zero")
				}
			}
			out := tensor.MustNew(tensor.Uint64, bc.out)
			o := out.U64()
			sa, sb, k := bc.step(0), bc.step(1), bc.inner
			bc.rows(ctx, func(off int, offs []int) {
				for j := 0; j < k; j++ {
					o[off+j] = x[offs[0]+j*sa] % y[offs[1]+j*sb]
				}
			})
			return one(out)
		}
		x, err := ints(a)
		if err != nil {
			return nil, err
		}
		y, _ := ints(b)
		for _, v := range y {
			if v == 0 {
				return nil, fmt.Errorf("integer modulo by zero")
			}
		}
		r := make([]int64, bc.n)
		sa, sb, k := bc.step(0), bc.step(1), bc.inner
		bc.rows(ctx, func(off int, offs []int) {
			for j := 0; j < k; j++ {
				p, q := x[offs[0]+j*sa], y[offs[1]+j*sb]
				m := p % q
				// fmod=0 is Python's %: the result takes the divisor's sign.
				if fmodAttr == 0 && m != 0 && (m < 0) != (q < 0) {
					m += q
				}
				r[off+j] = m
			}
		})
		out, err := cast(tensor.FromInt64(bc.out, r), a.DType)
		if err != nil {
			return nil, err
		}
		return one(out)
	}), nil
}

func isClass(f func(float64) bool) runtime.KernelFunc {
	return func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		v, err := in[0].AsFloat64()
		if err != nil {
			return nil, err
		}
		out := tensor.MustNew(tensor.Bool, in[0].Shape)
		o := out.Bools()
		for i, x := range v {
			o[i] = f(x)
		}
		return one(out)
	}
}

func newIsInf(n *graph.Node, _ int64) (runtime.Kernel, error) {
	neg, err := n.AttrInt("detect_negative", 1)
	if err != nil {
		return nil, err
	}
	pos, err := n.AttrInt("detect_positive", 1)
	if err != nil {
		return nil, err
	}
	return f16wrap(isClass(func(v float64) bool {
		return (neg != 0 && math.IsInf(v, -1)) || (pos != 0 && math.IsInf(v, 1))
	})), nil
}

func newShrink(n *graph.Node, _ int64) (runtime.Kernel, error) {
	l, err := attrF(n, "lambd", 0.5)
	if err != nil {
		return nil, err
	}
	b, err := attrF(n, "bias", 0)
	if err != nil {
		return nil, err
	}
	u := unaryOp{f: func(x float64) float64 {
		switch {
		case x < -l:
			return x + b
		case x > l:
			return x - b
		}
		return 0
	}}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		return runUnary(ctx, u, in)
	}), nil
}

// newLRN is local response normalisation across channels:
// y = x / (bias + alpha/size · Σ x²)^beta over a window of size channels.
func newLRN(n *graph.Node, _ int64) (runtime.Kernel, error) {
	size, err := n.AttrInt("size", 0)
	if err != nil {
		return nil, err
	}
	if size < 1 || size > 1<<16 {
		return nil, fmt.Errorf("size %d", size)
	}
	alpha, err := attrF(n, "alpha", 0.0001)
	if err != nil {
		return nil, err
	}
	beta, err := attrF(n, "beta", 0.75)
	if err != nil {
		return nil, err
	}
	bias, err := attrF(n, "bias", 1)
	if err != nil {
		return nil, err
	}
	sz := int(size)
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if x.DType != tensor.Float32 || len(x.Shape) < 3 {
			return nil, fmt.Errorf("input must be float32 [N,C,...], got %v", x)
		}
		N, C := x.Shape[0], x.Shape[1]
		sp := prod(x.Shape[2:])
		out, err := ctx.New(tensor.Float32, x.Shape)
		if err != nil {
			return nil, err
		}
		src, dst := x.F32(), out.F32()
		lo := (sz - 1) / 2 // floor((size-1)/2) channels below, ceil above
		hi := (sz - 1) - lo
		ctx.Parallel(N*C, 1, func(a, b int) {
			for nc := a; nc < b; nc++ {
				nn, c := nc/C, nc%C
				for s := 0; s < sp; s++ {
					var sum float64
					for cc := max(0, c-lo); cc <= min(C-1, c+hi); cc++ {
						v := float64(src[(nn*C+cc)*sp+s])
						sum += v * v
					}
					p := (nn*C+c)*sp + s
					dst[p] = float32(float64(src[p]) / math.Pow(bias+alpha/float64(sz)*sum, beta))
				}
			}
		})
		return one(out)
	}), nil
}

// newMVN normalises to zero mean and unit variance over axes (default
// [0, 2, 3]).
func newMVN(n *graph.Node, _ int64) (runtime.Kernel, error) {
	axes, err := n.AttrInts("axes", []int64{0, 2, 3})
	if err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if x.DType != tensor.Float32 {
			return nil, fmt.Errorf("input is %v, want float32", x.DType)
		}
		r := len(x.Shape)
		red := make([]bool, r)
		for _, a := range axes {
			i, err := normAxis(a, r)
			if err != nil {
				return nil, err
			}
			red[i] = true
		}
		// Per output group: mean and variance over the reduced positions.
		st := stridesOf(x.Shape)
		groups := map[int][2]float64{}
		key := func(flat int) int {
			k := 0
			for d := 0; d < r; d++ {
				if !red[d] {
					k = k*x.Shape[d] + flat/st[d]%x.Shape[d]
				}
			}
			return k
		}
		src := x.F32()
		cnt := map[int]int{}
		for i, v := range src {
			k := key(i)
			g := groups[k]
			g[0] += float64(v)
			g[1] += float64(v) * float64(v)
			groups[k] = g
			cnt[k]++
		}
		out, err := ctx.New(tensor.Float32, x.Shape)
		if err != nil {
			return nil, err
		}
		dst := out.F32()
		for i, v := range src {
			k := key(i)
			g, c := groups[k], float64(cnt[k])
			mean := g[0] / c
			variance := g[1]/c - mean*mean
			dst[i] = float32((float64(v) - mean) / (math.Sqrt(max(variance, 0)) + 1e-9))
		}
		return one(out)
	}), nil
}

func init() {
	regAny("EyeLike", newEyeLike)
	regAny("Compress", newCompress)
	reg("BitShift", []tensor.DType{tensor.Uint8, tensor.Uint16, tensor.Uint32, tensor.Uint64}, newBitShift)
}

func newEyeLike(n *graph.Node, _ int64) (runtime.Kernel, error) {
	k, err := n.AttrInt("k", 0)
	if err != nil {
		return nil, err
	}
	dtAttr, err := n.AttrInt("dtype", -1)
	if err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if len(x.Shape) != 2 {
			return nil, fmt.Errorf("input must be 2-D, got %v", x.Shape)
		}
		dt := x.DType
		if dtAttr >= 0 {
			dt = tensor.DType(dtAttr)
			if dtAttr > 255 || !dt.Supported() {
				return nil, fmt.Errorf("dtype %d is not supported", dtAttr)
			}
		}
		rows, cols := x.Shape[0], x.Shape[1]
		f := make([]float64, rows*cols)
		for i := 0; i < rows; i++ {
			if j := int64(i) + k; j >= 0 && j < int64(cols) {
				f[i*cols+int(j)] = 1
			}
		}
		out, err := cast(&tensor.Tensor{DType: tensor.Float64, Shape: x.Shape, Data: f}, dt)
		if err != nil {
			return nil, err
		}
		return one(out)
	}), nil
}

func newCompress(n *graph.Node, _ int64) (runtime.Kernel, error) {
	hasAxis := n.Attr("axis") != nil
	axis, err := n.AttrInt("axis", 0)
	if err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x, c := in[0], in[1]
		if c.DType != tensor.Bool || len(c.Shape) != 1 {
			return nil, fmt.Errorf("condition must be a 1-D bool tensor, got %v", c)
		}
		if !hasAxis {
			x = view(x, []int{x.Len()})
		}
		ax, err := normAxis(axis, len(x.Shape))
		if !hasAxis {
			ax, err = 0, nil
		}
		if err != nil {
			return nil, err
		}
		var keep []int
		for i, b := range c.Bools() {
			if b && i < x.Shape[ax] {
				keep = append(keep, i)
			}
		}
		idx := make([]int64, len(keep))
		for i, v := range keep {
			idx[i] = int64(v)
		}
		g, err := newGather(&graph.Node{Attrs: []*graph.Attribute{graph.IntAttr("axis", int64(ax))}}, 13)
		if err != nil {
			return nil, err
		}
		return g.Run(ctx, []*tensor.Tensor{x, tensor.FromInt64([]int{len(idx)}, idx)})
	}), nil
}

func newBitShift(n *graph.Node, _ int64) (runtime.Kernel, error) {
	dir, err := n.AttrString("direction", "")
	if err != nil {
		return nil, err
	}
	if dir != "LEFT" && dir != "RIGHT" {
		return nil, fmt.Errorf("direction %q, want LEFT or RIGHT", dir)
	}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		a, b := in[0], in[1]
		if a.DType != b.DType {
			return nil, fmt.Errorf("input types differ: %v and %v", a.DType, b.DType)
		}
		bc, err := newBcast(a.Shape, b.Shape)
		if err != nil {
			return nil, err
		}
		if err := ctx.CheckAlloc(a.DType, bc.out); err != nil {
			return nil, err
		}
		out, err := tensor.New(a.DType, bc.out)
		if err != nil {
			return nil, err
		}
		switch x := a.Data.(type) {
		case []uint8:
			shift(ctx, bc, out.U8(), x, b.U8(), dir == "LEFT")
		case []uint16:
			shift(ctx, bc, out.U16(), x, b.U16(), dir == "LEFT")
		case []uint32:
			shift(ctx, bc, out.U32(), x, b.U32(), dir == "LEFT")
		case []uint64:
			shift(ctx, bc, out.U64(), x, b.U64(), dir == "LEFT")
		default:
			return nil, fmt.Errorf("input type %v, want unsigned", a.DType)
		}
		return one(out)
	}), nil
}

func shift[T ~uint8 | ~uint16 | ~uint32 | ~uint64](ctx *runtime.Context, bc *bcast, dst, a, b []T, left bool) {
	sa, sb, k := bc.step(0), bc.step(1), bc.inner
	bc.rows(ctx, func(off int, offs []int) {
		for j := 0; j < k; j++ {
			x, s := a[offs[0]+j*sa], b[offs[1]+j*sb]
			if left {
				dst[off+j] = x << s
			} else {
				dst[off+j] = x >> s
			}
		}
	})
}

func init() {
	reg("NonMaxSuppression", []tensor.DType{tensor.Float32}, newNMS)
}

// newNMS is greedy non-maximum suppression per batch and class: boxes in
// descending score order (ties: lower index first) are kept unless their
// IoU with a kept box exceeds iou_threshold; output rows are
// [batch, class, box].
func newNMS(n *graph.Node, _ int64) (runtime.Kernel, error) {
	center, err := n.AttrInt("center_point_box", 0)
	if err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		boxes, scores := in[0], in[1]
		if boxes.DType != tensor.Float32 || scores.DType != tensor.Float32 || len(boxes.Shape) != 3 || boxes.Shape[2] != 4 ||
			len(scores.Shape) != 3 || scores.Shape[0] != boxes.Shape[0] || scores.Shape[2] != boxes.Shape[1] {
			return nil, fmt.Errorf("boxes %v and scores %v: want float32 [B,N,4] and [B,C,N]", boxes, scores)
		}
		maxOut := int64(0)
		iouTh, scoreTh := float32(0), float32(math.Inf(-1))
		if t, err := optional(in, 2); err != nil {
			return nil, err
		} else if t != nil && t.Len() > 0 {
			v, err := ints(t)
			if err != nil {
				return nil, err
			}
			maxOut = v[0]
		}
		for i, p := range []*float32{&iouTh, &scoreTh} {
			if t, err := optional(in, 3+i); err != nil {
				return nil, err
			} else if t != nil && t.Len() > 0 {
				if t.DType != tensor.Float32 {
					return nil, fmt.Errorf("input %d is %v, want float32", 3+i, t.DType)
				}
				*p = t.F32()[0]
			}
		}
		B, N, C := boxes.Shape[0], boxes.Shape[1], scores.Shape[1]
		bx, sc := boxes.F32(), scores.F32()
		corners := func(b, i int) (y1, x1, y2, x2 float32) {
			p := bx[(b*N+i)*4 : (b*N+i)*4+4]
			if center != 0 {
				xc, yc, w, h := p[0], p[1], p[2], p[3]
				return yc - h/2, xc - w/2, yc + h/2, xc + w/2
			}
			return min(p[0], p[2]), min(p[1], p[3]), max(p[0], p[2]), max(p[1], p[3])
		}
		iou := func(b, i, j int) float32 {
			ay1, ax1, ay2, ax2 := corners(b, i)
			by1, bx1, by2, bx2 := corners(b, j)
			ih := min(ay2, by2) - max(ay1, by1)
			iw := min(ax2, bx2) - max(ax1, bx1)
			if ih <= 0 || iw <= 0 {
				return 0
			}
			inter := ih * iw
			union := (ay2-ay1)*(ax2-ax1) + (by2-by1)*(bx2-bx1) - inter
			if union <= 0 {
				return 0
			}
			return inter / union
		}
		var rows []int64
		order := make([]int, 0, N)
		for b := 0; b < B; b++ {
			for c := 0; c < C; c++ {
				s := sc[(b*C+c)*N : (b*C+c+1)*N]
				order = order[:0]
				for i, v := range s {
					if v > scoreTh {
						order = append(order, i)
					}
				}
				sort.SliceStable(order, func(p, q int) bool { return s[order[p]] > s[order[q]] })
				var kept []int
				for _, i := range order {
					if int64(len(kept)) >= maxOut {
						break
					}
					ok := true
					for _, k := range kept {
						if iou(b, i, k) > iouTh {
							ok = false
							break
						}
					}
					if ok {
						kept = append(kept, i)
						rows = append(rows, int64(b), int64(c), int64(i))
					}
				}
			}
		}
		return one(tensor.FromInt64([]int{len(rows) / 3, 3}, rows))
	}), nil
}
