package nn

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	register("", "ConvTranspose", newConvTranspose)
}

type convTranspose struct {
	n        *graph.Node
	attrs    windowAttrs
	group    int
	outPad   []int
	outShape []int
	packs    packCache[[]*packedA] // Wᵀ packed per group
}

func newConvTranspose(n *graph.Node, opset int64) (runtime.Kernel, error) {
	c := &convTranspose{n: n}
	var err error
	if c.attrs, err = readWindowAttrs(n); err != nil {
		return nil, err
	}
	g, err := n.AttrInt("group", 1)
	if err != nil {
		return nil, err
	}
	if g < 1 || g > 1<<30 {
		return nil, fmt.Errorf("%v: group %d must be positive", n, g)
	}
	c.group = int(g)
	if c.outPad, err = attrInts(n, "output_padding"); err != nil {
		return nil, err
	}
	if c.outShape, err = attrInts(n, "output_shape"); err != nil {
		return nil, err
	}
	for _, v := range c.outPad {
		if v < 0 {
			return nil, fmt.Errorf("%v: output_padding %v must not be negative", n, c.outPad)
		}
	}
	if w := n.Input(1); w != nil && w.Const != nil && w.Const.DType == tensor.Float32 {
		if err := w.Const.Validate(); err != nil {
			return nil, fmt.Errorf("%v: weights: %v", n, err)
		}
		if len(w.Const.Shape) >= 3 && w.Const.Shape[0]%c.group == 0 {
			c.packs.setConst(w.Const, packTransposed(w.Const.F32(), w.Const.Shape, c.group))
		}
	}
	return c, nil
}

// packTransposed packs each group's W_g^T: W is [C, M/group, k...], so the
// GEMM computing columns = W_gᵀ·X_g has A = [Mg·kSize × Cg].
func packTransposed(w []float32, wShape []int, group int) []*packedA {
	cg := wShape[0] / group
	mk := prod(wShape[1:])
	out := make([]*packedA, group)
	for g := range out {
		out[g] = packA(true, mk, cg, w[g*cg*mk:], mk)
	}
	return out
}

// maxColTransposed bounds ConvTranspose's column buffer (1 GiB of float32).
const maxColTransposed = 1 << 28

func (c *convTranspose) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := c.n
	x, err := f32In(n, in, 0)
	if err != nil {
		return nil, err
	}
	w, err := f32In(n, in, 1)
	if err != nil {
		return nil, err
	}
	b, err := optF32In(n, in, 2)
	if err != nil {
		return nil, err
	}
	if x.Rank() < 3 || w.Rank() != x.Rank() {
		return nil, fmt.Errorf("%v: input %v and weights %v must have the same rank >= 3", n, x.Shape, w.Shape)
	}
	N, C := x.Shape[0], x.Shape[1]
	if w.Shape[0] != C || C%c.group != 0 {
		return nil, fmt.Errorf("%v: input channels %d, weights %v and group %d do not agree", n, C, w.Shape, c.group)
	}
	mg := w.Shape[1]
	M := mg * c.group
	k := w.Shape[2:]
	if c.attrs.kernel != nil && !tensor.SameShape(c.attrs.kernel, k) {
		return nil, fmt.Errorf("%v: kernel_shape %v does not match weights %v", n, c.attrs.kernel, w.Shape)
	}
	var bias []float32
	if b != nil {
		if b.Len() != M {
			return nil, fmt.Errorf("%v: bias has %d values, want %d", n, b.Len(), M)
		}
		bias = b.F32()
	}
	g, err := c.geometry(x.Shape[2:], k)
	if err != nil {
		return nil, err
	}
	y, err := newF32(ctx, n, append([]int{N, M}, g.out...))
	if err != nil {
		return nil, err
	}
	if y.Len() == 0 {
		return []*tensor.Tensor{y}, nil
	}
	cg := C / c.group
	rows := mg * g.kSize
	if rows*g.inSize > maxColTransposed {
		return nil, fmt.Errorf("%v: column buffer of %d×%d too large", n, rows, g.inSize)
	}
	packed := c.packs.get(w, func() []*packedA { return packTransposed(w.F32(), w.Shape, c.group) })
	xd, yd := x.F32(), y.F32()
	bufp := getBuf(rows * g.inSize)
	defer putBuf(bufp)
	col := *bufp
	for img := 0; img < N; img++ {
		for gi := 0; gi < c.group; gi++ {
			xg := xd[(img*C+gi*cg)*g.inSize : (img*C+(gi+1)*cg)*g.inSize]
			p := packed[gi]
			rowsParallel(ctx, rows, g.inSize, cg, func(m0, m1 int) {
				gemmPackedA(p, m0, m1, g.inSize, xg, g.inSize, col, g.inSize, epilogue{})
			})
			ctx.Parallel(mg, 1, func(m0, m1 int) {
				for m := m0; m < m1; m++ {
					oc := gi*mg + m
					yc := yd[(img*M+oc)*g.outSize : (img*M+oc+1)*g.outSize]
					bv := float32(0)
					if bias != nil {
						bv = bias[oc]
					}
					for i := range yc {
						yc[i] = bv
					}
					g.col2im(col[m*g.kSize*g.inSize:(m+1)*g.kSize*g.inSize], yc)
				}
			})
		}
	}
	return []*tensor.Tensor{y}, nil
}

// geometry resolves output size and pads. For ConvTranspose, geom.in is the
// (small) input and geom.out the (large) output; the window maps input
// position i to output positions i·stride - padBegin + k·dil.
func (c *convTranspose) geometry(in, k []int) (*geom, error) {
	n := c.n
	nd := len(in)
	g := &geom{nd: nd, in: in, k: k}
	var err error
	a := &c.attrs
	if g.stride, err = filled(n, "strides", a.strides, nd, 1); err != nil {
		return nil, err
	}
	if g.dil, err = filled(n, "dilations", a.dil, nd, 1); err != nil {
		return nil, err
	}
	outPad, err := filled(n, "output_padding", c.outPad, nd, 0)
	if err != nil {
		return nil, err
	}
	outShape := c.outShape
	if len(outShape) == nd+2 {
		outShape = outShape[2:]
	}
	if outShape != nil && len(outShape) != nd {
		return nil, fmt.Errorf("%v: output_shape %v does not fit %d spatial dims", n, c.outShape, nd)
	}
	g.padBegin = make([]int, nd)
	g.padEnd = make([]int, nd)
	g.out = make([]int, nd)
	if a.pads != nil {
		if len(a.pads) != 2*nd {
			return nil, fmt.Errorf("%v: pads has %d values, want %d", n, len(a.pads), 2*nd)
		}
		copy(g.padBegin, a.pads[:nd])
		copy(g.padEnd, a.pads[nd:])
	}
	for i := 0; i < nd; i++ {
		if k[i] < 1 {
			return nil, fmt.Errorf("%v: kernel %v has an empty dim", n, k)
		}
		if max(g.padBegin[i], g.padEnd[i], outPad[i], k[i], g.dil[i], g.stride[i]) > maxWindow ||
			(outShape != nil && (outShape[i] < 0 || outShape[i] > tensor.MaxElements)) {
			return nil, fmt.Errorf("%v: kernel %v, strides, pads, dilations or output_shape out of range", n, k)
		}
		full := g.stride[i]*(in[i]-1) + outPad[i] + (k[i]-1)*g.dil[i] + 1
		target := -1
		if outShape != nil {
			target = outShape[i]
		} else if a.autoPad == "SAME_UPPER" || a.autoPad == "SAME_LOWER" {
			target = in[i] * g.stride[i]
		}
		if target >= 0 {
			// A negative total (output_shape larger than the full output)
			// extends the output with bias-only positions at the end; the
			// split uses floor division as the ONNX reference does.
			total := full - target
			half := total >> 1
			if a.autoPad == "SAME_UPPER" {
				g.padBegin[i], g.padEnd[i] = half, total-half
			} else {
				g.padBegin[i], g.padEnd[i] = total-half, half
			}
			g.out[i] = target
		} else {
			g.out[i] = full - g.padBegin[i] - g.padEnd[i]
		}
		if g.out[i] < 0 {
			return nil, fmt.Errorf("%v: negative output size %d in dim %d", n, g.out[i], i)
		}
	}
	g.inSize, g.kSize, g.outSize = prod(in), prod(k), prod(g.out)
	return g, nil
}

// col2im adds the columns of one output channel (kSize rows × inSize) into
// y (outSize values) at their output positions.
func (g *geom) col2im(col []float32, y []float32) {
	nd := g.nd
	last := nd - 1
	kk := make([]int, nd)
	i := make([]int, nd)
	outStr := make([]int, nd)
	acc := 1
	for d := nd - 1; d >= 0; d-- {
		outStr[d] = acc
		acc *= g.out[d]
	}
	inLast, outLast := g.in[last], g.out[last]
	sL, dL, pL := g.stride[last], g.dil[last], g.padBegin[last]
	outer := g.inSize / max(1, inLast)
	for kidx := 0; kidx < g.kSize; kidx++ {
		src := col[kidx*g.inSize : (kidx+1)*g.inSize]
		for d := range i {
			i[d] = 0
		}
		for r := 0; r < outer; r++ {
			base := 0
			valid := true
			for d := 0; d < last; d++ {
				od := i[d]*g.stride[d] - g.padBegin[d] + kk[d]*g.dil[d]
				if od < 0 || od >= g.out[d] {
					valid = false
					break
				}
				base += od * outStr[d]
			}
			if valid {
				s := src[r*inLast : (r+1)*inLast]
				yr := y[base : base+outLast]
				off := kk[last]*dL - pL
				for t, v := range s {
					o := t*sL + off
					if uint(o) < uint(outLast) {
						yr[o] += v
					}
				}
			}
			for d := last - 1; d >= 0; d-- {
				i[d]++
				if i[d] < g.in[d] {
					break
				}
				i[d] = 0
			}
		}
		for d := last; d >= 0; d-- {
			kk[d]++
			if kk[d] < g.k[d] {
				break
			}
			kk[d] = 0
		}
	}
}
