package qlinear

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/simd/q8"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	// Input 0 is Y_scale (float), so the registration is for any dtype.
	runtime.Register(MicrosoftDomain, "QLinearConcat", runtime.AnyDType, newQLinearConcat)
}

// concatKernel is com.microsoft QLinearConcat: inputs Y_scale,
// Y_zero_point, then (X, X_scale, X_zero_point) per input. Each input is
// copied when its scale and zero point are the output's, else mapped through
// ONNX Runtime's identity lookup table (dequantize, quantize to the output).
type concatKernel struct {
	node   *graph.Node
	axis   int64
	tables []*planTable // per input, where its and Y's qparams are constants
}

func newQLinearConcat(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) < 5 || (len(n.Inputs)-2)%3 != 0 {
		return nil, fmt.Errorf("%v: QLinearConcat takes Y_scale, Y_zero_point and (X, scale, zero point) triples, got %d inputs", n, len(n.Inputs))
	}
	axis, err := n.AttrInt("axis", 0)
	if err != nil {
		return nil, err
	}
	k := &concatKernel{node: n, axis: axis, tables: make([]*planTable, (len(n.Inputs)-2)/3)}
	for i := range k.tables {
		k.tables[i] = newPlanTable(n, []int{0, 1, 3 + 3*i, 4 + 3*i}, func(in []*tensor.Tensor, dt tensor.DType, tab *[256]uint8) error {
			ys, _, err := scalesIn(n, in, 0, "Y_scale", 1)
			if err != nil {
				return err
			}
			if yzt := input(in, 1); yzt == nil || yzt.DType != dt {
				return fmt.Errorf("%v: Y_zero_point is not %v", n, dt)
			}
			yz, err := zeroPointsIn(n, in, 1, "Y_zero_point", dt, 1)
			if err != nil {
				return err
			}
			s, _, err := scalesIn(n, in, 3+3*i, "X_scale", 1)
			if err != nil {
				return err
			}
			z, err := zeroPointsIn(n, in, 4+3*i, "X_zero_point", dt, 1)
			if err != nil {
				return err
			}
			if len(z) != 1 {
				return fmt.Errorf("%v: input %d zero point must be a scalar", n, i)
			}
			identityTable(tab, dt, s[0], z[0], ys[0], yz[0])
			return nil
		})
	}
	return k, nil
}

// identityTable is ONNX Runtime's lookup table of an input whose qparams
// are not the output's: dequantize, quantize to the output's.
func identityTable(tab *[256]uint8, dt tensor.DType, s float32, z int32, ys float32, yz int32) {
	q8.BuildTable(tab, dt == tensor.Int8, s, z, ys, yz, func(v float32) float32 { return v })
}

func (k *concatKernel) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.node
	ys, _, err := scalesIn(n, in, 0, "Y_scale", 1)
	if err != nil {
		return nil, err
	}
	yzt := input(in, 1)
	if yzt == nil {
		return nil, fmt.Errorf("%v: Y_zero_point is missing", n)
	}
	dt := yzt.DType
	if dt != tensor.Uint8 && dt != tensor.Int8 {
		return nil, fmt.Errorf("%v: Y_zero_point is %v, want uint8 or int8", n, dt)
	}
	yz, err := zeroPointsIn(n, in, 1, "Y_zero_point", dt, 1)
	if err != nil {
		return nil, err
	}
	count := (len(in) - 2) / 3
	xs := make([]*tensor.Tensor, count)
	var shape []int
	total := 0
	ax := 0
	for i := range xs {
		x, err := int8In(n, in, 2+3*i, fmt.Sprintf("X%d", i))
		if err != nil {
			return nil, err
		}
		if x.DType != dt {
			return nil, fmt.Errorf("%v: input %d is %v, output %v", n, i, x.DType, dt)
		}
		if i == 0 {
			r := int64(x.Rank())
			a := k.axis
			if a < 0 {
				a += r
			}
			if a < 0 || a >= r {
				return nil, fmt.Errorf("%v: axis %d for rank %d", n, k.axis, r)
			}
			ax = int(a)
			shape = append([]int(nil), x.Shape...)
		} else {
			if x.Rank() != len(shape) {
				return nil, fmt.Errorf("%v: input %d has rank %d, input 0 %d", n, i, x.Rank(), len(shape))
			}
			for d := range shape {
				if d != ax && x.Shape[d] != shape[d] {
					return nil, fmt.Errorf("%v: input %d shape %v does not match %v off axis %d", n, i, x.Shape, shape, ax)
				}
			}
		}
		total += x.Shape[ax]
		xs[i] = x
	}
	shape[ax] = total
	if _, err := checkedProduct(shape...); err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	out, err := tensor.New(dt, shape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	outer, inner := 1, 1
	for d := 0; d < ax; d++ {
		outer *= shape[d]
	}
	for d := ax + 1; d < len(shape); d++ {
		inner *= shape[d]
	}
	ob := bytesOf(out)
	outPitch := total * inner
	off := 0
	var pooled *[256]uint8 // one table for the inputs without a plan-time one, in turn
	for i, x := range xs {
		s, _, err := scalesIn(n, in, 3+3*i, fmt.Sprintf("X%d_scale", i), 1)
		if err != nil {
			return nil, err
		}
		z, err := zeroPointsIn(n, in, 4+3*i, fmt.Sprintf("X%d_zero_point", i), dt, 1)
		if err != nil {
			return nil, err
		}
		if len(z) != 1 {
			return nil, fmt.Errorf("%v: input %d zero point must be a scalar", n, i)
		}
		copyOnly := s[0] == ys[0] && z[0] == yz[0]
		var table *[256]uint8
		if !copyOnly {
			if i < len(k.tables) {
				table = k.tables[i].get(in, dt)
			}
			if table == nil {
				if pooled == nil {
					pooled = tablePool.Get().(*[256]uint8)
					defer tablePool.Put(pooled)
				}
				table = pooled
				identityTable(table, dt, s[0], z[0], ys[0], yz[0])
			}
		}
		xb := bytesOf(x)
		pitch := x.Shape[ax] * inner
		for o := 0; o < outer; o++ {
			src := xb[o*pitch : (o+1)*pitch]
			dst := ob[o*outPitch+off : o*outPitch+off+pitch]
			if copyOnly {
				copy(dst, src)
			} else {
				q8.LookupU8(dst, src, table)
			}
		}
		off += pitch
	}
	return []*tensor.Tensor{out}, nil
}
