package basic

import (
	"fmt"
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

const (
	smSoftmax = iota
	smLog
	smHard
)

func init() {
	types := []tensor.DType{tensor.Float32, tensor.Float64, tensor.Float16}
	for op, kind := range map[string]int{"Softmax": smSoftmax, "LogSoftmax": smLog, "Hardmax": smHard} {
		kind := kind
		reg(op, types, func(n *graph.Node, opset int64) (runtime.Kernel, error) {
			return newSoftmax(n, opset, kind)
		})
	}
}

// newSoftmax: before opset 13 the input is flattened to 2-D at axis
// (default 1) and each row normalised; from 13 on, normalisation runs
// along axis alone (default -1).
func newSoftmax(n *graph.Node, opset int64, kind int) (runtime.Kernel, error) {
	legacy := opset < 13
	def := int64(-1)
	if legacy {
		def = 1
	}
	axis, err := n.AttrInt("axis", def)
	if err != nil {
		return nil, err
	}
	return f16wrap(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		r := len(x.Shape)
		var outer, rn, inner int
		if r == 0 {
			outer, rn, inner = 1, 1, 1
		} else {
			ax, err := normAxis(axis, r)
			if err != nil {
				return nil, err
			}
			if legacy {
				outer, rn, inner = prod(x.Shape[:ax]), prod(x.Shape[ax:]), 1
			} else {
				outer, rn, inner = prod(x.Shape[:ax]), x.Shape[ax], prod(x.Shape[ax+1:])
			}
		}
		out, err := ctx.New(x.DType, x.Shape)
		if err != nil {
			return nil, err
		}
		switch d := x.Data.(type) {
		case []float32:
			if kind == smSoftmax {
				softmaxF32(ctx, out.F32(), d, outer, rn, inner)
			} else {
				softmaxT(ctx, kind, out.F32(), d, outer, rn, inner)
			}
		case []float64:
			softmaxT(ctx, kind, out.F64(), d, outer, rn, inner)
		default:
			return nil, fmt.Errorf("input is %v, want float", x.DType)
		}
		return one(out)
	}), nil
}

func softmaxT[T float](ctx *runtime.Context, kind int, dst, src []T, outer, rn, inner int) {
	ctx.Parallel(outer, max(1, grain/max(1, rn*inner)), func(lo, hi int) {
		tmp := make([]float64, rn)
		for o := lo; o < hi; o++ {
			for i := 0; i < inner; i++ {
				base := o*rn*inner + i
				m := math.Inf(-1)
				bi := 0
				for j := 0; j < rn; j++ {
					if v := float64(src[base+j*inner]); v > m {
						m, bi = v, j
					}
				}
				if kind == smHard {
					for j := 0; j < rn; j++ {
						dst[base+j*inner] = 0
					}
					if rn > 0 {
						dst[base+bi*inner] = 1
					}
					continue
				}
				sum := 0.0
				for j := 0; j < rn; j++ {
					e := math.Exp(float64(src[base+j*inner]) - m)
					tmp[j] = e
					sum += e
				}
				if kind == smLog {
					ls := math.Log(sum)
					for j := 0; j < rn; j++ {
						dst[base+j*inner] = T(float64(src[base+j*inner]) - m - ls)
					}
					continue
				}
				for j := 0; j < rn; j++ {
					dst[base+j*inner] = T(tmp[j] / sum)
				}
			}
		}
	})
}

// softmaxF32 is Softmax in float32 with expf; the sum is kept in float64.
func softmaxF32(ctx *runtime.Context, dst, src []float32, outer, rn, inner int) {
	ctx.Parallel(outer, max(1, grain/max(1, rn*inner)), func(lo, hi int) {
		for o := lo; o < hi; o++ {
			for i := 0; i < inner; i++ {
				base := o*rn*inner + i
				m := float32(math.Inf(-1))
				for j := 0; j < rn; j++ {
					m = max(m, src[base+j*inner])
				}
				sum := 0.0
				for j := 0; j < rn; j++ {
					e := expf(src[base+j*inner] - m)
					dst[base+j*inner] = e
					sum += float64(e)
				}
				inv := float32(1 / sum)
				for j := 0; j < rn; j++ {
					dst[base+j*inner] *= inv
				}
			}
		}
	})
}
