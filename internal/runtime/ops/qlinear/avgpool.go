package qlinear

import (
	"fmt"
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		runtime.Register(MicrosoftDomain, "QLinearAveragePool", dt, newQLinearAveragePool)
	}
}

// avgPoolKernel is com.microsoft QLinearAveragePool as ONNX Runtime computes
// it: every input dequantized to float32 (sx·(x−xz)), the window summed in
// float32 in row-major order, divided by the window size (the kernel size
// with count_include_pad, else the clipped window), then
// clamp(rint(y/sy + yz)).
type avgPoolKernel struct {
	node         *graph.Node
	attrs        convAttrs
	ceil         bool
	includePad   bool
	channelsLast bool
}

func newQLinearAveragePool(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) < 4 || len(n.Inputs) > 5 {
		return nil, fmt.Errorf("%v: QLinearAveragePool takes 4 or 5 inputs, got %d", n, len(n.Inputs))
	}
	k := &avgPoolKernel{node: n}
	var err error
	if k.attrs, err = readConvAttrs(n); err != nil {
		return nil, err
	}
	if k.attrs.kernel == nil {
		return nil, fmt.Errorf("%v: kernel_shape is required", n)
	}
	if k.attrs.dil != nil {
		for _, d := range k.attrs.dil {
			if d != 1 {
				return nil, fmt.Errorf("%v: dilations are not supported", n)
			}
		}
	}
	for name, dst := range map[string]*bool{"ceil_mode": &k.ceil, "count_include_pad": &k.includePad, "channels_last": &k.channelsLast} {
		v, err := n.AttrInt(name, 0)
		if err != nil {
			return nil, err
		}
		*dst = v != 0
	}
	return k, nil
}

func (k *avgPoolKernel) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.node
	x, err := int8In(n, in, 0, "X")
	if err != nil {
		return nil, err
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
	nd := len(k.attrs.kernel)
	if r != nd+2 || nd < 1 || nd > 3 {
		return nil, fmt.Errorf("%v: X %v for a %d-d kernel", n, x.Shape, nd)
	}
	batch, c := x.Shape[0], x.Shape[1]
	sp := x.Shape[2:]
	if k.channelsLast {
		c, sp = x.Shape[r-1], x.Shape[1:r-1]
	}
	kern := make([]int, nd)
	for d, v := range k.attrs.kernel {
		kern[d] = int(v)
	}
	geo, err := k.attrs.geometry(n, sp, kern)
	if err != nil {
		return nil, err
	}
	if k.ceil && k.attrs.autoPad == "NOTSET" {
		// ceil_mode: one more window where the division had a remainder.
		geo.outSize = 1
		for d := 0; d < nd; d++ {
			pb, pe := 0, 0
			if k.attrs.pads != nil {
				pb, pe = int(k.attrs.pads[d]), int(k.attrs.pads[d+nd])
			}
			span := sp[d] + pb + pe - kern[d]
			geo.out[d] = (span+geo.stride[d]-1)/geo.stride[d] + 1
			geo.outSize *= geo.out[d]
		}
	}
	outShape := append([]int{batch}, geo.out...)
	if k.channelsLast {
		outShape = append(outShape, c)
	} else {
		outShape = append([]int{batch, c}, geo.out...)
	}
	if _, err := checkedProduct(outShape...); err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	out, err := tensor.New(x.DType, outShape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	signed := x.DType == tensor.Int8
	// The dequantized input, as ONNX Runtime materializes it.
	src := bytesOf(x)
	deq := make([]float32, len(src))
	for i, v := range src {
		q := int32(v)
		if signed {
			q = int32(int8(v))
		}
		deq[i] = xs[0] * float32(q-xz[0])
	}
	lo, hi := int32(0), int32(255)
	if signed {
		lo, hi = -128, 127
	}
	ob := bytesOf(out)
	ksize := 1
	for _, v := range kern {
		ksize *= v
	}
	insz := geo.inSize
	ctx.Parallel(batch*c, 1, func(l, h int) {
		for bc := l; bc < h; bc++ {
			b, ch := bc/c, bc%c
			at := func(lin int) float32 {
				if k.channelsLast {
					return deq[(b*insz+lin)*c+ch]
				}
				return deq[bc*insz+lin]
			}
			var st, en [3]int
			for p := 0; p < geo.outSize; p++ {
				pr := p
				for d := nd - 1; d >= 0; d-- {
					o := pr % geo.out[d]
					pr /= geo.out[d]
					s := o*geo.stride[d] - geo.padB[d]
					e := min(s+kern[d], sp[d])
					st[d], en[d] = max(s, 0), e
				}
				var sum float32
				count := 1
				switch nd {
				case 1:
					for i := st[0]; i < en[0]; i++ {
						sum += at(i)
					}
				case 2:
					for i := st[0]; i < en[0]; i++ {
						for j := st[1]; j < en[1]; j++ {
							sum += at(i*sp[1] + j)
						}
					}
				case 3:
					for i := st[0]; i < en[0]; i++ {
						for j := st[1]; j < en[1]; j++ {
							for q := st[2]; q < en[2]; q++ {
								sum += at((i*sp[1]+j)*sp[2] + q)
							}
						}
					}
				}
				if k.includePad {
					count = ksize
				} else {
					for d := 0; d < nd; d++ {
						count *= max(en[d]-st[d], 0)
					}
				}
				y := sum / float32(count)
				v := float64(y/ys[0] + float32(yz[0]))
				qv := int32(math.RoundToEven(v))
				if !(v >= math.MinInt32 && v <= math.MaxInt32) {
					qv = math.MinInt32
				}
				qv = min(max(qv, lo), hi)
				if k.channelsLast {
					ob[(b*geo.outSize+p)*c+ch] = uint8(qv)
				} else {
					ob[bc*geo.outSize+p] = uint8(qv)
				}
			}
		}
	})
	return []*tensor.Tensor{out}, nil
}
