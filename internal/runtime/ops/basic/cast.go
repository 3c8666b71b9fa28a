package basic

import (
	"fmt"
	"math"
	"strconv"

	"github.com/x448/float16"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	regAny("Cast", newCast)
	regAny("CastLike", kf(func(_ *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		out, err := cast(in[0], in[1].DType)
		if err != nil {
			return nil, err
		}
		return one(out)
	}))
}

func newCast(n *graph.Node, opset int64) (runtime.Kernel, error) {
	to, err := n.AttrInt("to", 0)
	if err != nil {
		return nil, err
	}
	dt := tensor.DType(to)
	if to < 0 || to > 255 || !dt.Supported() {
		return nil, fmt.Errorf("cast to ONNX type %d is not supported", to)
	}
	return runtime.KernelFunc(func(_ *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		out, err := cast(in[0], dt)
		if err != nil {
			return nil, err
		}
		return one(out)
	}), nil
}

// cast converts element by element as ONNX Cast does: floats to integers
// truncate toward zero, anything non-zero is true, bools are 0/1, float16
// rounds to nearest even.
func cast(x *tensor.Tensor, to tensor.DType) (*tensor.Tensor, error) {
	if x.DType == to {
		return x.Clone(), nil
	}
	if x.DType == tensor.String || to == tensor.String {
		return castString(x, to)
	}
	out, err := tensor.New(to, x.Shape)
	if err != nil {
		return nil, err
	}
	switch s := x.Data.(type) {
	case []float32:
		castFrom(out, s)
	case []float64:
		castFrom(out, s)
	case []int8:
		castFrom(out, s)
	case []uint8:
		castFrom(out, s)
	case []int16:
		castFrom(out, s)
	case []uint16:
		castFrom(out, s)
	case []int32:
		castFrom(out, s)
	case []uint32:
		castFrom(out, s)
	case []int64:
		castFrom(out, s)
	case []uint64:
		castFrom(out, s)
	case []float16.Float16:
		f := make([]float32, len(s))
		for i, v := range s {
			f[i] = v.Float32()
		}
		castFrom(out, f)
	case []bool:
		b := make([]uint8, len(s))
		for i, v := range s {
			if v {
				b[i] = 1
			}
		}
		castFrom(out, b)
	default:
		return nil, fmt.Errorf("cannot cast %v", x.DType)
	}
	return out, nil
}

func castFrom[S number](out *tensor.Tensor, s []S) {
	switch d := out.Data.(type) {
	case []float32:
		conv(d, s)
	case []float64:
		conv(d, s)
	case []int8:
		conv(d, s)
	case []uint8:
		conv(d, s)
	case []int16:
		conv(d, s)
	case []uint16:
		conv(d, s)
	case []int32:
		conv(d, s)
	case []uint32:
		conv(d, s)
	case []int64:
		conv(d, s)
	case []uint64:
		conv(d, s)
	case []float16.Float16:
		for i, v := range s {
			d[i] = float16.Fromfloat32(float32(v))
		}
	case []bool:
		for i, v := range s {
			d[i] = v != 0
		}
	}
}

func conv[D, S number](d []D, s []S) {
	for i, v := range s {
		d[i] = D(v)
	}
}

func castString(x *tensor.Tensor, to tensor.DType) (*tensor.Tensor, error) {
	if x.DType == tensor.String {
		f := make([]float64, x.Len())
		for i, s := range x.Strings() {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				if s == "INF" || s == "+INF" || s == "inf" {
					v = math.Inf(1)
				} else if s == "-INF" || s == "-inf" {
					v = math.Inf(-1)
				} else {
					return nil, fmt.Errorf("cannot parse %q as a number", s)
				}
			}
			f[i] = v
		}
		return cast(&tensor.Tensor{DType: tensor.Float64, Shape: x.Shape, Data: f}, to)
	}
	return nil, fmt.Errorf("cast from %v to string is not supported", x.DType)
}
