package basic

import (
	"fmt"
	"math"
	"sort"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

type reduceKind int

const (
	rSum reduceKind = iota
	rMean
	rMax
	rMin
	rProd
	rL1
	rL2
	rLogSum
	rLogSumExp
	rSumSquare
)

func init() {
	types := append([]tensor.DType{tensor.Float16, tensor.Bool}, numericTypes...)
	for op, k := range map[string]reduceKind{
		"ReduceSum": rSum, "ReduceMean": rMean, "ReduceMax": rMax, "ReduceMin": rMin, "ReduceProd": rProd,
		"ReduceL1": rL1, "ReduceL2": rL2, "ReduceLogSum": rLogSum, "ReduceLogSumExp": rLogSumExp,
		"ReduceSumSquare": rSumSquare,
	} {
		k := k
		// Axes moved from an attribute to an input in opset 13 for
		// ReduceSum and in opset 18 for the others.
		inputFrom := int64(18)
		if op == "ReduceSum" {
			inputFrom = 13
		}
		reg(op, types, func(n *graph.Node, opset int64) (runtime.Kernel, error) {
			return newReduce(n, k, opset >= inputFrom)
		})
	}
	argTypes := append([]tensor.DType{tensor.Float16}, numericTypes...)
	reg("ArgMax", argTypes, func(n *graph.Node, _ int64) (runtime.Kernel, error) { return newArg(n, true) })
	reg("ArgMin", argTypes, func(n *graph.Node, _ int64) (runtime.Kernel, error) { return newArg(n, false) })
	reg("TopK", numericTypes, newTopK)
}

type reduceKernel struct {
	n         *graph.Node
	kind      reduceKind
	fromInput bool
	keep      bool
	noop      bool
}

func newReduce(n *graph.Node, kind reduceKind, fromInput bool) (runtime.Kernel, error) {
	keep, err := n.AttrInt("keepdims", 1)
	if err != nil {
		return nil, err
	}
	noop, err := n.AttrInt("noop_with_empty_axes", 0)
	if err != nil {
		return nil, err
	}
	return &reduceKernel{n: n, kind: kind, fromInput: fromInput, keep: keep != 0, noop: noop != 0}, nil
}

func (k *reduceKernel) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := need(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	axes, _, err := axesArg(k.n, in, 1, k.fromInput)
	if err != nil {
		return nil, err
	}
	r := len(x.Shape)
	red := make([]bool, r)
	if len(axes) == 0 {
		if k.noop {
			return one(x)
		}
		for i := range red {
			red[i] = true
		}
	}
	for _, a := range axes {
		i, err := normAxis(a, r)
		if err != nil {
			return nil, err
		}
		red[i] = true
	}
	var oshape []int
	for i, d := range x.Shape {
		if !red[i] {
			oshape = append(oshape, d)
		} else if k.keep {
			oshape = append(oshape, 1)
		}
	}
	if oshape == nil {
		oshape = []int{}
	}
	// Bring the reduced axes together: [outer, r, inner].
	first, last := -1, -1
	contiguous := true
	for i, b := range red {
		if b {
			if first < 0 {
				first = i
			} else if last != i-1 {
				contiguous = false
			}
			last = i
		}
	}
	src := x
	var outer, rn, inner int
	if first < 0 {
		outer, rn, inner = prod(x.Shape), 1, 1
	} else if contiguous {
		outer, rn, inner = prod(x.Shape[:first]), prod(x.Shape[first:last+1]), prod(x.Shape[last+1:])
	} else {
		var perm []int
		for i, b := range red {
			if !b {
				perm = append(perm, i)
			}
		}
		for i, b := range red {
			if b {
				perm = append(perm, i)
			}
		}
		if src, err = transpose(nil, x, perm); err != nil {
			return nil, err
		}
		rn = 1
		for i, b := range red {
			if b {
				rn *= x.Shape[i]
			}
		}
		outer, inner = prod(x.Shape)/max(rn, 1), 1
		if rn == 0 {
			outer = 1
			for i, b := range red {
				if !b {
					outer *= x.Shape[i]
				}
			}
		}
	}
	var xs []float64
	if f, ok := src.Data.([]float32); ok {
		xs = make([]float64, len(f))
		for i, v := range f {
			xs[i] = float64(v)
		}
	} else if xs, err = src.AsFloat64(); err != nil {
		return nil, err
	}
	res := make([]float64, outer*inner)
	ctx.Parallel(outer, max(1, grain/max(1, rn*inner)), func(lo, hi int) {
		for o := lo; o < hi; o++ {
			for i := 0; i < inner; i++ {
				var row []float64
				if rn > 0 {
					row = xs[o*rn*inner+i:]
				}
				res[o*inner+i] = reduceRun(k.kind, row, rn, inner)
			}
		}
	})
	out, err := cast(&tensor.Tensor{DType: tensor.Float64, Shape: oshape, Data: res}, x.DType)
	if err != nil {
		return nil, err
	}
	return one(out)
}

// reduceRun reduces n elements of x spaced by stride.
func reduceRun(kind reduceKind, x []float64, n, stride int) float64 {
	var acc float64
	switch kind {
	case rMax:
		acc = math.Inf(-1)
	case rMin:
		acc = math.Inf(1)
	case rProd:
		acc = 1
	case rLogSumExp:
		m := math.Inf(-1)
		for j := 0; j < n; j++ {
			m = math.Max(m, x[j*stride])
		}
		if math.IsInf(m, 0) {
			m = 0
		}
		for j := 0; j < n; j++ {
			acc += math.Exp(x[j*stride] - m)
		}
		return math.Log(acc) + m
	}
	for j := 0; j < n; j++ {
		v := x[j*stride]
		switch kind {
		case rSum, rMean, rLogSum:
			acc += v
		case rMax:
			if v > acc || v != v {
				acc = v
			}
		case rMin:
			if v < acc || v != v {
				acc = v
			}
		case rProd:
			acc *= v
		case rL1:
			acc += math.Abs(v)
		case rL2, rSumSquare:
			acc += v * v
		}
		if acc != acc {
			break
		}
	}
	switch kind {
	case rMean:
		return acc / float64(n)
	case rL2:
		return math.Sqrt(acc)
	case rLogSum:
		return math.Log(acc)
	}
	return acc
}

func newArg(n *graph.Node, isMax bool) (runtime.Kernel, error) {
	axis, err := n.AttrInt("axis", 0)
	if err != nil {
		return nil, err
	}
	keep, err := n.AttrInt("keepdims", 1)
	if err != nil {
		return nil, err
	}
	last, err := n.AttrInt("select_last_index", 0)
	if err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(_ *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		ax, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return nil, err
		}
		rn := x.Shape[ax]
		if rn == 0 {
			return nil, fmt.Errorf("cannot take the arg of an empty axis")
		}
		outer, inner := prod(x.Shape[:ax]), prod(x.Shape[ax+1:])
		oshape := append([]int(nil), x.Shape...)
		if keep != 0 {
			oshape[ax] = 1
		} else {
			oshape = append(oshape[:ax], oshape[ax+1:]...)
		}
		xs, err := x.AsFloat64()
		if err != nil {
			return nil, err
		}
		out := tensor.MustNew(tensor.Int64, oshape)
		o := out.I64()
		for a := 0; a < outer; a++ {
			for i := 0; i < inner; i++ {
				base := a*rn*inner + i
				best, bi := xs[base], 0
				for j := 1; j < rn; j++ {
					v := xs[base+j*inner]
					better := v > best
					if !isMax {
						better = v < best
					}
					if better || (last != 0 && v == best) {
						best, bi = v, j
					}
				}
				o[a*inner+i] = int64(bi)
			}
		}
		return one(out)
	}), nil
}

func newTopK(n *graph.Node, opset int64) (runtime.Kernel, error) {
	axis, err := n.AttrInt("axis", -1)
	if err != nil {
		return nil, err
	}
	largest, err := n.AttrInt("largest", 1)
	if err != nil {
		return nil, err
	}
	attrK, err := n.AttrInt("k", -1)
	if err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(_ *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		k := attrK
		if opset >= 10 {
			if err := need(in, 2); err != nil {
				return nil, err
			}
			kv, err := ints(in[1])
			if err != nil || len(kv) != 1 {
				return nil, fmt.Errorf("K must be one integer")
			}
			k = kv[0]
		}
		ax, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return nil, err
		}
		rn := x.Shape[ax]
		if k < 0 || k > int64(rn) {
			return nil, fmt.Errorf("k %d out of range for axis of size %d", k, rn)
		}
		var outs []*tensor.Tensor
		switch d := x.Data.(type) {
		case []float32:
			outs, err = topK(x, d, ax, int(k), largest != 0)
		case []float64:
			outs, err = topK(x, d, ax, int(k), largest != 0)
		case []int32:
			outs, err = topK(x, d, ax, int(k), largest != 0)
		case []int64:
			outs, err = topK(x, d, ax, int(k), largest != 0)
		case []uint64:
			outs, err = topK(x, d, ax, int(k), largest != 0)
		case []uint8:
			outs, err = topK(x, d, ax, int(k), largest != 0)
		case []int8:
			outs, err = topK(x, d, ax, int(k), largest != 0)
		default:
			return nil, fmt.Errorf("input type %v is not supported", x.DType)
		}
		return outs, err
	}), nil
}

// topK sorts each slice along the axis, ties going to the lower index, and
// keeps the first k (values and int64 indices).
func topK[T number](x *tensor.Tensor, d []T, ax, k int, largest bool) ([]*tensor.Tensor, error) {
	rn := x.Shape[ax]
	outer, inner := prod(x.Shape[:ax]), prod(x.Shape[ax+1:])
	oshape := append([]int(nil), x.Shape...)
	oshape[ax] = k
	vals, err := tensor.New(x.DType, oshape)
	if err != nil {
		return nil, err
	}
	idxs := tensor.MustNew(tensor.Int64, oshape)
	vo, io := vals.Data.([]T), idxs.I64()
	order := make([]int, rn)
	for a := 0; a < outer; a++ {
		for i := 0; i < inner; i++ {
			base := a*rn*inner + i
			for j := range order {
				order[j] = j
			}
			sort.SliceStable(order, func(p, q int) bool {
				u, v := d[base+order[p]*inner], d[base+order[q]*inner]
				if largest {
					return u > v || (v != v && u == u)
				}
				return u < v || (v != v && u == u)
			})
			for j := 0; j < k; j++ {
				o := a*k*inner + j*inner + i
				vo[o] = d[base+order[j]*inner]
				io[o] = int64(order[j])
			}
		}
	}
	return []*tensor.Tensor{vals, idxs}, nil
}
