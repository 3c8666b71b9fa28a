package qlinear

import (
	"fmt"
	"unsafe"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/simd/q8"
	"github.com/qtool/qtool/internal/tensor"
)

// QtoolDomain is the domain of qtool's own ops (as in ops/nn).
const QtoolDomain = "com.qtool"

func init() {
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		runtime.Register(QtoolDomain, "MaxPool2d", dt, newMaxPool2d)
	}
}

// maxPool2dKernel is com.qtool MaxPool2d: ONNX MaxPool restricted to 2-D
// NCHW uint8/int8 tensors, one output, no dilation, explicit pads. The QDQ
// rewrite (internal/runtime/qdq) emits it for DQ → MaxPool → Q with equal
// qparams: the max of quantized values is the quantized max, so it is exact.
// The separable form (column max over the window's rows, then row max over
// its columns) does k_h+k_w comparisons per output instead of k_h·k_w, and
// avoids the generic pool's per-window offset lists.
type maxPool2dKernel struct {
	node           *graph.Node
	kh, kw, sh, sw int
	pads           [4]int // top, left, bottom, right
	ceil           bool
	// nhwc (attribute channels_last) takes and gives [N, H, W, C], as
	// qdq.Rewrite keeps the integer region; then both passes run over
	// contiguous runs of channels.
	nhwc bool
}

func newMaxPool2d(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) != 1 || len(n.Outputs) != 1 {
		return nil, fmt.Errorf("%v: MaxPool2d takes 1 input and 1 output", n)
	}
	k := &maxPool2dKernel{node: n}
	ks, err := n.AttrInts("kernel_shape", nil)
	if err != nil {
		return nil, err
	}
	st, err := n.AttrInts("strides", []int64{1, 1})
	if err != nil {
		return nil, err
	}
	pads, err := n.AttrInts("pads", []int64{0, 0, 0, 0})
	if err != nil {
		return nil, err
	}
	ceil, err := n.AttrInt("ceil_mode", 0)
	if err != nil {
		return nil, err
	}
	cl, err := n.AttrInt("channels_last", 0)
	if err != nil {
		return nil, err
	}
	k.nhwc = cl != 0
	if len(ks) != 2 || len(st) != 2 || len(pads) != 4 {
		return nil, fmt.Errorf("%v: MaxPool2d needs 2-D kernel_shape, strides and 4 pads", n)
	}
	for _, v := range append(append([]int64{}, ks...), st...) {
		if v < 1 || v > 1<<16 {
			return nil, fmt.Errorf("%v: kernel_shape and strides must be in 1..65536", n)
		}
	}
	for i, v := range pads {
		if v < 0 || v >= ks[i%2] {
			return nil, fmt.Errorf("%v: pad %d not in 0..kernel-1", n, v)
		}
		k.pads[i] = int(v)
	}
	k.kh, k.kw, k.sh, k.sw, k.ceil = int(ks[0]), int(ks[1]), int(st[0]), int(st[1]), ceil != 0
	return k, nil
}

// outSize follows ONNX (and ONNX Runtime): with ceil_mode the last window
// is dropped when it would start inside the end padding.
func outSize(in, k, s, pb, pe int, ceil bool) int {
	span := in + pb + pe - k
	if span < 0 {
		return 0
	}
	o := span/s + 1
	if ceil && span%s != 0 {
		o++
		if (o-1)*s >= in+pb {
			o--
		}
	}
	return o
}

func (k *maxPool2dKernel) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	if x == nil || x.Rank() != 4 || (x.DType != tensor.Uint8 && x.DType != tensor.Int8) {
		return nil, fmt.Errorf("%v: X must be a 4-D uint8 or int8 tensor", k.node)
	}
	if err := validate(x); err != nil {
		return nil, fmt.Errorf("%v: %w", k.node, err)
	}
	N, C, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	if k.nhwc {
		H, W, C = x.Shape[1], x.Shape[2], x.Shape[3]
	}
	OH := outSize(H, k.kh, k.sh, k.pads[0], k.pads[2], k.ceil)
	OW := outSize(W, k.kw, k.sw, k.pads[1], k.pads[3], k.ceil)
	yShape := []int{N, C, OH, OW}
	if k.nhwc {
		yShape = []int{N, OH, OW, C}
	}
	y, err := ctx.NewUninit(x.DType, yShape)
	if err != nil {
		return nil, err
	}
	if y.Len() == 0 {
		return []*tensor.Tensor{y}, nil
	}
	if H == 0 || W == 0 {
		return nil, fmt.Errorf("%v: empty spatial input %v", k.node, x.Shape)
	}
	if k.nhwc {
		var flip uint64
		var xb, yb []byte
		if x.DType == tensor.Int8 {
			flip = 0x8080808080808080
			xb, yb = u8View(x.I8()), u8View(y.I8())
		} else {
			xb, yb = x.U8(), y.U8()
		}
		maxPool2dNHWC(ctx, k, xb, yb, N, C, H, W, OH, OW, flip)
	} else if x.DType == tensor.Uint8 {
		maxPool2d(ctx, k, x.U8(), y.U8(), N*C, H, W, OH, OW)
	} else {
		maxPool2d(ctx, k, x.I8(), y.I8(), N*C, H, W, OH, OW)
	}
	return []*tensor.Tensor{y}, nil
}

func maxPool2d[T uint8 | int8](ctx *runtime.Context, k *maxPool2dKernel, x, y []T, planes, H, W, OH, OW int) {
	// Window bounds per output row/column, clipped to the image. With the
	// pads below the kernel size every window holds at least one pixel.
	rowLo, rowHi := bounds(OH, H, k.kh, k.sh, k.pads[0])
	colLo, colHi := bounds(OW, W, k.kw, k.sw, k.pads[1])
	// flip maps int8 order onto uint8 order (x ^ 0x80) for the byte-wise max.
	var flip uint64
	if _, signed := any(x[0]).(int8); signed {
		flip = 0x8080808080808080
	}
	ctx.Parallel(planes, max(1, 16384/max(1, H*W)), func(p0, p1 int) {
		col := make([]T, W)
		cb := poolBytes(col)
		for p := p0; p < p1; p++ {
			xp := x[p*H*W : (p+1)*H*W]
			yp := y[p*OH*OW : (p+1)*OH*OW]
			for oh := 0; oh < OH; oh++ {
				r0, r1 := rowLo[oh], rowHi[oh]
				copy(col, xp[r0*W:r0*W+W])
				for r := r0 + 1; r < r1; r++ {
					q8.MaxBytes(cb, poolBytes(xp[r*W:r*W+W]), flip != 0)
				}
				out := yp[oh*OW : oh*OW+OW]
				for ow := range out {
					c0, c1 := colLo[ow], colHi[ow]
					if c1-c0 == 3 {
						out[ow] = max(col[c0], col[c0+1], col[c0+2])
						continue
					}
					b := col[c0]
					for _, v := range col[c0+1 : c1] {
						b = max(b, v)
					}
					out[ow] = b
				}
			}
		}
	})
}

// maxPool2dNHWC is maxPool2d on [N][H][W][C] bytes: per output row, the
// max over the window's input rows of whole W·C rows, then per output pixel
// the max over its columns' C-byte runs, all with q8.MaxBytes.
func maxPool2dNHWC(ctx *runtime.Context, k *maxPool2dKernel, x, y []byte, N, C, H, W, OH, OW int, flip uint64) {
	rowLo, rowHi := bounds(OH, H, k.kh, k.sh, k.pads[0])
	colLo, colHi := bounds(OW, W, k.kw, k.sw, k.pads[1])
	row := W * C
	ctx.Parallel(N*OH, max(1, 16384/max(1, row)), func(lo, hi int) {
		col := make([]byte, row)
		for t := lo; t < hi; t++ {
			b, oh := t/OH, t%OH
			xb := x[b*H*row : (b+1)*H*row]
			r0, r1 := rowLo[oh], rowHi[oh]
			copy(col, xb[r0*row:(r0+1)*row])
			for r := r0 + 1; r < r1; r++ {
				q8.MaxBytes(col, xb[r*row:(r+1)*row], flip != 0)
			}
			out := y[(b*OH+oh)*OW*C : (b*OH+oh+1)*OW*C]
			for ow := 0; ow < OW; ow++ {
				dst := out[ow*C : (ow+1)*C]
				c0, c1 := colLo[ow], colHi[ow]
				copy(dst, col[c0*C:(c0+1)*C])
				for c := c0 + 1; c < c1; c++ {
					q8.MaxBytes(dst, col[c*C:(c+1)*C], flip != 0)
				}
			}
		}
	})
}

func poolBytes[T uint8 | int8](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s))
}

func bounds(out, in, k, s, pad int) (lo, hi []int) {
	lo, hi = make([]int, out), make([]int, out)
	for o := range lo {
		a := o*s - pad
		b := a + k
		lo[o], hi[o] = max(a, 0), min(b, in)
		if lo[o] >= hi[o] { // only reachable with ceil_mode windows past the end
			lo[o], hi[o] = in-1, in
		}
	}
	return lo, hi
}
