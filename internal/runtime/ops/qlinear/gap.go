package qlinear

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/simd/q8"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		runtime.Register(MicrosoftDomain, "QLinearGlobalAveragePool", dt, newQLinearGAP)
	}
}

// gapKernel is com.microsoft QLinearGlobalAveragePool as MLAS computes it:
// the int32 sum over the image minus xz·size, requantized with
// sx/(sy·float32(size)) (round half to even, saturate).
type gapKernel struct {
	node         *graph.Node
	channelsLast bool
}

func newQLinearGAP(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) != 5 {
		return nil, fmt.Errorf("%v: QLinearGlobalAveragePool takes 5 inputs, got %d", n, len(n.Inputs))
	}
	cl, err := n.AttrInt("channels_last", 0)
	if err != nil {
		return nil, err
	}
	return &gapKernel{node: n, channelsLast: cl != 0}, nil
}

func (k *gapKernel) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.node
	x, err := int8In(n, in, 0, "X")
	if err != nil {
		return nil, err
	}
	if x.Rank() < 3 {
		return nil, fmt.Errorf("%v: X %v has fewer than 3 dimensions", n, x.Shape)
	}
	xs, _, err := scalesIn(n, in, 1, "x_scale", 1)
	if err != nil {
		return nil, err
	}
	xz, err := zeroPointsIn(n, in, 2, "x_zero_point", x.DType, 1)
	if err != nil {
		return nil, err
	}
	ys, _, err := scalesIn(n, in, 3, "y_scale", 1)
	if err != nil {
		return nil, err
	}
	yz, err := zeroPointsIn(n, in, 4, "y_zero_point", x.DType, 1)
	if err != nil {
		return nil, err
	}
	if len(xz) != 1 || len(yz) != 1 {
		return nil, fmt.Errorf("%v: zero points must be scalars", n)
	}
	r := x.Rank()
	batch := x.Shape[0]
	c, s0, s1 := x.Shape[1], 2, r
	if k.channelsLast {
		c, s0, s1 = x.Shape[r-1], 1, r-1
	}
	size := 1
	outShape := append([]int(nil), x.Shape...)
	for d := s0; d < s1; d++ {
		size *= x.Shape[d]
		outShape[d] = 1
	}
	// MLAS's limits: larger images or scales outside [2^-32, 256) are
	// rejected there too.
	scale := xs[0] / (ys[0] * float32(size))
	if size == 0 || size >= 1<<24 || !(scale >= 0x1p-32 && scale < 256) {
		return nil, fmt.Errorf("%v: image of %d pixels with scale ratio %g is outside the supported range", n, size, scale)
	}
	out, err := ctx.NewUninit(x.DType, outShape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	src := bytesOf(x)
	sums := make([]int32, batch*c)
	signed := x.DType == tensor.Int8
	for b := 0; b < batch; b++ {
		img := src[b*c*size : (b+1)*c*size]
		if k.channelsLast {
			// Pixel by pixel over contiguous channels instead of a
			// stride-c walk per channel (the same integer sums).
			q8.SumPixels(sums[b*c:(b+1)*c], img, size, c, signed)
			continue
		}
		for ch := 0; ch < c; ch++ {
			var s int32
			for p := 0; p < size; p++ {
				i := ch*size + p
				if k.channelsLast {
					i = p*c + ch
				}
				if signed {
					s += int32(int8(img[i]))
				} else {
					s += int32(img[i])
				}
			}
			sums[b*c+ch] = s
		}
	}
	rq := &q8.Requant{Bias: []int32{-xz[0] * int32(size)}, Scale: []float32{scale}, OutZero: yz[0], Ldc: 1}
	if signed {
		rq.OutS8 = out.I8()
	} else {
		rq.OutU8 = out.U8()
	}
	q8.Requantize(batch*c, 1, sums, 1, rq)
	return []*tensor.Tensor{out}, nil
}
