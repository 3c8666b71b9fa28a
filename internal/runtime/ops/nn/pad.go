package nn

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
	"github.com/x448/float16"
)

func init() {
	runtime.Register("", "Pad", runtime.AnyDType, newPad)
}

type pad struct {
	n     *graph.Node
	opset int64
	mode  string
	pads  []int64 // opset < 11
	value float32 // opset < 11
}

func newPad(n *graph.Node, opset int64) (runtime.Kernel, error) {
	p := &pad{n: n, opset: opset}
	var err error
	if p.mode, err = n.AttrString("mode", "constant"); err != nil {
		return nil, err
	}
	switch p.mode {
	case "constant", "reflect", "edge":
	case "wrap":
		if opset < 19 {
			return nil, fmt.Errorf("%v: mode wrap needs opset 19", n)
		}
	default:
		return nil, fmt.Errorf("%v: unknown mode %q", n, p.mode)
	}
	if opset < 11 {
		if p.pads, err = n.AttrInts("pads", nil); err != nil {
			return nil, err
		}
		if p.pads == nil {
			p.pads, err = n.AttrInts("paddings", nil) // opset 1
			if err != nil {
				return nil, err
			}
		}
		if p.value, err = n.AttrFloat("value", 0); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *pad) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := p.n
	x := input(in, 0)
	if x == nil {
		return nil, fmt.Errorf("%v: input 0 is missing", n)
	}
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	r := x.Rank()
	pads := p.pads
	var cval *tensor.Tensor
	if p.opset >= 11 {
		var err error
		if pads, err = intsIn(n, in, 1); err != nil {
			return nil, err
		}
		if pads == nil {
			return nil, fmt.Errorf("%v: pads input is missing", n)
		}
		cval = input(in, 2)
		if cval != nil && (cval.DType != x.DType || cval.Len() != 1) {
			return nil, fmt.Errorf("%v: constant_value must be one %v, got %v", n, x.DType, cval)
		}
		axes, err := intsIn(n, in, 3)
		if err != nil {
			return nil, err
		}
		if axes != nil {
			if len(pads) != 2*len(axes) {
				return nil, fmt.Errorf("%v: %d pads for %d axes", n, len(pads), len(axes))
			}
			full := make([]int64, 2*r)
			for i, a := range axes {
				ax, err := normAxis(n, int(max(min(a, 1<<30), -1<<30)), r)
				if err != nil {
					return nil, err
				}
				full[ax], full[r+ax] = pads[i], pads[len(axes)+i]
			}
			pads = full
		}
	}
	if len(pads) != 2*r {
		return nil, fmt.Errorf("%v: %d pads for rank %d", n, len(pads), r)
	}
	outShape := make([]int, r)
	maps := make([][]int, r)
	for d := 0; d < r; d++ {
		pb, pe := pads[d], pads[r+d]
		if pb > 1<<31 || pe > 1<<31 || pb < -(1<<31) || pe < -(1<<31) {
			return nil, fmt.Errorf("%v: pads %v out of range", n, pads)
		}
		size := int64(x.Shape[d]) + pb + pe
		if size < 0 {
			return nil, fmt.Errorf("%v: pads %v crop dim %d (size %d) below zero", n, pads, d, x.Shape[d])
		}
		if size > tensor.MaxElements {
			return nil, fmt.Errorf("%v: padded dim %d too large", n, d)
		}
		outShape[d] = int(size)
		if x.Shape[d] == 0 && size > 0 && p.mode != "constant" {
			return nil, fmt.Errorf("%v: cannot %s-pad an empty dim", n, p.mode)
		}
	}
	if _, err := tensor.NumElements(outShape); err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	for d := 0; d < r; d++ {
		maps[d] = padMap(p.mode, x.Shape[d], outShape[d], int(pads[d]))
	}
	y, err := ctx.New(x.DType, outShape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	switch xd := x.Data.(type) {
	case []float32:
		c := p.value
		if cval != nil {
			c = cval.F32()[0]
		}
		padCopy(xd, y.F32(), x.Shape, outShape, maps, c)
	case []float64:
		c := float64(p.value)
		if cval != nil {
			c = cval.F64()[0]
		}
		padCopy(xd, y.F64(), x.Shape, outShape, maps, c)
	case []float16.Float16:
		c := float16.Fromfloat32(p.value)
		if cval != nil {
			c = cval.F16()[0]
		}
		padCopy(xd, y.F16(), x.Shape, outShape, maps, c)
	case []int8:
		padCopy(xd, y.I8(), x.Shape, outShape, maps, constOf(cval, int8(p.value)))
	case []uint8:
		padCopy(xd, y.U8(), x.Shape, outShape, maps, constOf(cval, uint8(p.value)))
	case []int16:
		padCopy(xd, y.I16(), x.Shape, outShape, maps, constOf(cval, int16(p.value)))
	case []uint16:
		padCopy(xd, y.U16(), x.Shape, outShape, maps, constOf(cval, uint16(p.value)))
	case []int32:
		padCopy(xd, y.I32(), x.Shape, outShape, maps, constOf(cval, int32(p.value)))
	case []uint32:
		padCopy(xd, y.U32(), x.Shape, outShape, maps, constOf(cval, uint32(p.value)))
	case []int64:
		padCopy(xd, y.I64(), x.Shape, outShape, maps, constOf(cval, int64(p.value)))
	case []uint64:
		padCopy(xd, y.U64(), x.Shape, outShape, maps, constOf(cval, uint64(p.value)))
	case []bool:
		padCopy(xd, y.Bools(), x.Shape, outShape, maps, constOf(cval, p.value != 0))
	default:
		return nil, fmt.Errorf("%v: unsupported input type %v", n, x.DType)
	}
	return []*tensor.Tensor{y}, nil
}

func constOf[T any](c *tensor.Tensor, def T) T {
	if c == nil {
		return def
	}
	return c.Data.([]T)[0]
}

// padMap maps each output index of one dim to its input index, or -1 for
// the constant.
func padMap(mode string, in, out, pb int) []int {
	m := make([]int, out)
	for o := range m {
		i := o - pb
		if i >= 0 && i < in {
			m[o] = i
			continue
		}
		switch mode {
		case "constant":
			i = -1
		case "edge":
			i = min(max(i, 0), in-1)
		case "wrap":
			i = ((i % in) + in) % in
		case "reflect":
			if in == 1 {
				i = 0
				break
			}
			period := 2 * (in - 1)
			i = ((i % period) + period) % period
			if i >= in {
				i = period - i
			}
		}
		m[o] = i
	}
	return m
}

func padCopy[T any](x, y []T, inShape, outShape []int, maps [][]int, c T) {
	r := len(outShape)
	if r == 0 {
		if len(x) > 0 && len(y) > 0 {
			y[0] = x[0]
		}
		return
	}
	if len(y) == 0 {
		return
	}
	inStr := tensor.Strides(inShape)
	last := r - 1
	rowLen := outShape[last]
	rows := len(y) / max(1, rowLen)
	idx := make([]int, r)
	lm := maps[last]
	for row := 0; row < rows; row++ {
		dst := y[row*rowLen : (row+1)*rowLen]
		base := 0
		valid := true
		for d := 0; d < last; d++ {
			i := maps[d][idx[d]]
			if i < 0 {
				valid = false
				break
			}
			base += i * inStr[d]
		}
		if !valid {
			for j := range dst {
				dst[j] = c
			}
		} else {
			for j, i := range lm {
				if i < 0 {
					dst[j] = c
				} else {
					dst[j] = x[base+i]
				}
			}
		}
		for d := last - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < outShape[d] {
				break
			}
			idx[d] = 0
		}
	}
}
