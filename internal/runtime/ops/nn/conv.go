package nn

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// FusedConv (domain com.qtool) is Conv with a residual sum and an activation
// applied in the GEMM epilogue, what `qtool fuse` emits for Conv followed by
// Add and/or Relu, Clip or LeakyRelu:
//
//	Y = activation(Conv(X, W, B) + Z)
//
// Inputs: X, W, B (optional), Z (optional, the shape of Y). Attributes are
// Conv's plus
//
//	activation        string: "Relu", "Clip" or "LeakyRelu" (absent: none)
//	activation_params floats: Clip [min, max]; LeakyRelu [alpha] (default 0.01)
//
// which are the names and input order of ONNX Runtime's com.microsoft
// FusedConv, so the same kernel is registered for that domain too (what
// internal/fuse emits, so that ONNX Runtime runs fused models as well); of
// ORT's activations, Tanh, Sigmoid and HardSigmoid are refused at plan time.
// Standard ai.onnx Conv never reads these attributes.

func init() {
	register("", "Conv", func(n *graph.Node, opset int64) (runtime.Kernel, error) {
		return newConv(n, false)
	})
	register(QtoolDomain, "FusedConv", func(n *graph.Node, opset int64) (runtime.Kernel, error) {
		return newConv(n, true)
	})
	register(MSDomain, "FusedConv", func(n *graph.Node, opset int64) (runtime.Kernel, error) {
		return newConv(n, true)
	})
}

// readActivation parses FusedConv's activation attributes.
func readActivation(n *graph.Node) (epilogue, error) {
	var ep epilogue
	name, err := n.AttrString("activation", "")
	if err != nil {
		return ep, err
	}
	params, err := n.AttrFloats("activation_params", nil)
	if err != nil {
		return ep, err
	}
	switch name {
	case "":
	case "Relu":
		ep.Act = actRelu
	case "Clip":
		if len(params) != 2 {
			return ep, fmt.Errorf("%v: Clip activation needs activation_params [min, max], got %v", n, params)
		}
		ep.Act, ep.Min, ep.Max = actClip, params[0], params[1]
	case "LeakyRelu":
		ep.Act, ep.Alpha = actLeakyRelu, 0.01
		if len(params) > 0 {
			ep.Alpha = params[0]
		}
	default:
		return ep, fmt.Errorf("%v: unsupported fused activation %q", n, name)
	}
	return ep, nil
}

type conv struct {
	n     *graph.Node
	attrs windowAttrs
	group int
	act   epilogue // activation only
	fused bool
	// Prepacked weights, one per group, when W is a constant.
	packs packCache[[]*packedA] // weights packed per group
}

func newConv(n *graph.Node, fused bool) (*conv, error) {
	c := &conv{n: n, fused: fused}
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
	if fused {
		if c.act, err = readActivation(n); err != nil {
			return nil, err
		}
	}
	if w := n.Input(1); w != nil && w.Const != nil && w.Const.DType == tensor.Float32 {
		if err := w.Const.Validate(); err != nil {
			return nil, fmt.Errorf("%v: weights: %v", n, err)
		}
		if ws := w.Const.Shape; len(ws) >= 3 && ws[0]%c.group == 0 && !c.isDepthwise(ws) {
			c.packs.setConst(w.Const, packGroups(w.Const.F32(), ws, c.group))
		}
	}
	return c, nil
}

// isDepthwise reports whether each group has one input channel, the case
// the direct depthwise kernel handles.
func (c *conv) isDepthwise(wShape []int) bool {
	return c.group > 1 && wShape[1] == 1 && len(wShape) == 4
}

func packGroups(w []float32, wShape []int, group int) []*packedA {
	mg := wShape[0] / group
	kg := prod(wShape[1:])
	out := make([]*packedA, group)
	for g := range out {
		out[g] = packA(false, mg, kg, w[g*mg*kg:], kg)
	}
	return out
}

func (c *conv) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
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
	M, Cg := w.Shape[0], w.Shape[1]
	if Cg*c.group != C || M%c.group != 0 {
		return nil, fmt.Errorf("%v: input channels %d, weights %v and group %d do not agree", n, C, w.Shape, c.group)
	}
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
	g, err := c.attrs.resolve(n, x.Shape[2:], k, false)
	if err != nil {
		return nil, err
	}
	outShape := append([]int{N, M}, g.out...)
	ep := c.act
	var z *tensor.Tensor
	if c.fused {
		if z, err = optF32In(n, in, 3); err != nil {
			return nil, err
		}
		if z != nil && !tensor.SameShape(z.Shape, outShape) {
			return nil, fmt.Errorf("%v: Z %v does not match output %v", n, z.Shape, outShape)
		}
	}
	var y *tensor.Tensor
	if z != nil && ctx.Reusable(3) && z != x && z != w && z != b {
		// The residual dies here: accumulate into it in place.
		y = z
	} else {
		// Every path below writes all of y (the GEMM's k == 0 case
		// included), or z is copied over it first.
		if y, err = newF32Uninit(ctx, n, outShape); err != nil {
			return nil, err
		}
		if z != nil {
			copy(y.F32(), z.F32())
		}
	}
	if y.Len() == 0 {
		return []*tensor.Tensor{y}, nil
	}
	ep.Accumulate = z != nil
	xd, yd := x.F32(), y.F32()
	if c.isDepthwise(w.Shape) {
		depthwise2d(ctx, g, xd, w.F32(), bias, yd, N, C, M/C, ep)
		return []*tensor.Tensor{y}, nil
	}
	packed := c.packs.get(w, func() []*packedA { return packGroups(w.F32(), w.Shape, c.group) })
	convGemm(ctx, g, xd, packed, bias, yd, N, C, M, c.group, ep)
	return []*tensor.Tensor{y}, nil
}

// maxColFloats bounds one im2col tile (1 MiB, so that it stays in L2 while
// the GEMM packs it); wider outputs are split into
// column tiles whose size depends only on the shapes, never on the threads.
var maxColFloats = 1 << 18

// convGemm runs a grouped convolution as im2col + GEMM per (image, group).
func convGemm(ctx *runtime.Context, g *geom, x []float32, packed []*packedA, bias []float32, y []float32, N, C, M, group int, act epilogue) {
	cg, mg := C/group, M/group
	kg := cg * g.kSize
	P := g.outSize
	pointwise := g.kSize == 1
	for d := 0; d < g.nd; d++ {
		if g.stride[d] != 1 || g.padBegin[d] != 0 || g.padEnd[d] != 0 {
			pointwise = false
		}
	}
	// Column tiles: about maxColFloats of im2col each, at least 256
	// columns wide so the GEMM keeps full panels, in multiples of 32.
	tile := P
	if kg*P > maxColFloats {
		tile = (max(256, maxColFloats/kg) + 31) / 32 * 32
	}
	im2col := func(xg, col []float32, c, p0, p1 int) {
		if g.nd == 2 {
			g.im2col2d(xg, c, col, p0, p1)
			return
		}
		g.im2col(xg, c, col, p0, p1)
	}
	for img := 0; img < N; img++ {
		for gi := 0; gi < group; gi++ {
			xg := x[(img*C+gi*cg)*g.inSize : (img*C+(gi+1)*cg)*g.inSize]
			yg := y[(img*M+gi*mg)*P : (img*M+(gi+1)*mg)*P]
			ep := act
			if bias != nil {
				ep.RowBias = bias[gi*mg : (gi+1)*mg]
			}
			p := packed[gi]
			if pointwise {
				// The input already is the B matrix [cg × P].
				rowsParallel(ctx, mg, P, kg, func(m0, m1 int) {
					gemmPackedA(p, m0, m1, P, xg, P, yg, P, ep)
				})
				continue
			}
			if g.paddedGrid() {
				if useRowTiles && g.stride[1] <= 2 {
					convGroupRows(ctx, g, xg, p, ep, yg, cg, mg)
					continue
				}
				convGroupPadded(ctx, g, xg, p, ep, yg, cg, mg)
				continue
			}
			if tile >= P {
				bufp := getBuf(kg * P)
				col := *bufp
				// im2col split over input channels, then the GEMM over rows.
				small := g.smallPlane()
				ctx.Parallel(cg, max(1, 4096/max(1, g.kSize*P)), func(c0, c1 int) {
					if small {
						g.im2colSmall(xg[c0*g.inSize:c1*g.inSize], c1-c0, col[c0*g.kSize*P:c1*g.kSize*P])
						return
					}
					im2col(xg[c0*g.inSize:c1*g.inSize], col[c0*g.kSize*P:c1*g.kSize*P], c1-c0, 0, P)
				})
				rowsParallel(ctx, mg, P, kg, func(m0, m1 int) {
					gemmPackedA(p, m0, m1, P, col, P, yg, P, ep)
				})
				putBuf(bufp)
				continue
			}
			parallelFixed(ctx, P, tile, func(p0, p1 int) {
				bufp := getBuf(kg * (p1 - p0))
				col := *bufp
				im2col(xg, col, cg, p0, p1)
				gemmPackedA(p, 0, mg, p1-p0, col, p1-p0, yg[p0:], P, ep)
				putBuf(bufp)
			})
		}
	}
}

// rowsParallel splits the m rows of a GEMM [m×n, depth k] over threads when
// there is enough work. The SGEMM's results do not depend on how rows are
// split, so any split is deterministic.
func rowsParallel(ctx *runtime.Context, m, n, k int, fn func(m0, m1 int)) {
	work := n * k
	grain := 1
	if work > 0 {
		grain = max(1, (1<<16)/work)
	}
	// Keep chunks a multiple of 8 rows so the GEMM's row tiles stay full.
	grain = (grain + 7) / 8 * 8
	ctx.Parallel(m, grain, fn)
}

// useRowTiles switches convGroupRows (benchmarks compare it with
// convGroupPadded).
var useRowTiles = true

// convGroupRows runs one (image, group) of a 2-D convolution with column
// stride 1 or 2 as im2col + GEMM over tiles of whole output rows. The
// input is first copied into zero-padded planes; the im2col rows of a tile
// are then one CopyRows (stride 1) or GatherRows2 (stride 2) call per
// (channel, tap) out of them, and the GEMM writes the tile's rows of y
// directly. Unlike convGroupPadded it computes no junk columns (3.5% more
// work on a 56x56 map, 7% on 28x28) and has no output to compact.
func convGroupRows(ctx *runtime.Context, g *geom, xg []float32, p *packedA, ep epilogue, yg []float32, cg, mg int) {
	H, W := g.in[0], g.in[1]
	OH, OW := g.out[0], g.out[1]
	KH, KW := g.k[0], g.k[1]
	sh, sw := g.stride[0], g.stride[1]
	dh, dw := g.dil[0], g.dil[1]
	ph, pw := g.padBegin[0], g.padBegin[1]
	Hp, Wp := g.window()
	plane := Hp * Wp
	P := OH * OW
	kg := cg * g.kSize
	ih0, ih1 := max(0, -ph), min(H, Hp-ph)
	iw0, iw1 := max(0, -pw), min(W, Wp-pw)
	padp := getBuf(cg * plane)
	pad := *padp
	ctx.Parallel(cg, max(1, 4096/max(1, plane)), func(c0, c1 int) {
		// The recycled buffer holds stale data: clear, then copy the
		// in-input part.
		clear(pad[c0*plane : c1*plane])
		if ih0 >= ih1 || iw0 >= iw1 {
			return
		}
		for c := c0; c < c1; c++ {
			copyRows(pad[c*plane+(ih0+ph)*Wp+iw0+pw:], Wp, xg[(c*H+ih0)*W+iw0:], W, ih1-ih0, iw1-iw0)
		}
	})
	// Tiles of whole output rows, about maxColFloats of im2col each (at
	// least 256 columns), sized by the shapes alone.
	rows := max(1, maxColFloats/max(1, kg*OW), (256+OW-1)/OW)
	parallelFixed(ctx, OH, rows, func(oh0, oh1 int) {
		n := (oh1 - oh0) * OW
		colp := getBuf(kg * n)
		col := *colp
		for c := 0; c < cg; c++ {
			for kh := 0; kh < KH; kh++ {
				for kw := 0; kw < KW; kw++ {
					dst := col[(c*g.kSize+kh*KW+kw)*n:]
					src := pad[c*plane+(oh0*sh+kh*dh)*Wp+kw*dw:]
					if sw == 1 {
						copyRows(dst, OW, src, sh*Wp, oh1-oh0, OW)
					} else {
						gatherRows2(dst, OW, src, sh*Wp, oh1-oh0, OW)
					}
				}
			}
		}
		gemmPackedA(p, 0, mg, n, col, n, yg[oh0*OW:], P, ep)
		putBuf(colp)
	})
	putBuf(padp)
}

// usePaddedGrid switches the padded-grid path (benchmarks compare both).
var usePaddedGrid = true

// gridGeom is the layout of convGroupPadded's phase planes: the zero-padded
// input plane (Hp×Wp) dealt into sh·sw phase planes by row and column
// remainder modulo the stride, each Hq×Wq, so that output (oh, ow) with
// kernel tap (kh, kw) reads phase ((kh·dh)%sh, (kw·dw)%sw) at row
// oh + kh·dh/sh, column ow + kw·dw/sw: for a fixed tap, consecutive output
// positions are consecutive elements once the output is computed Wq
// columns wide.
type gridGeom struct {
	sh, sw, Hq, Wq, phase int
}

func (g *geom) grid() gridGeom {
	sh, sw := g.stride[0], g.stride[1]
	Hp := g.in[0] + g.padBegin[0] + g.padEnd[0]
	Wp := g.in[1] + g.padBegin[1] + g.padEnd[1]
	Wq := (Wp + sw - 1) / sw
	// Rows read by the last output row's last tap, plus one of slack for
	// the taps that run past a row's end into the next.
	Hq := max((Hp+sh-1)/sh, g.out[0]+(g.k[0]-1)*g.dil[0]/sh) + 1
	return gridGeom{sh: sh, sw: sw, Hq: Hq, Wq: Wq, phase: Hq * Wq}
}

// paddedGrid reports whether a 2-D convolution runs on the padded grid
// (convGroupPadded): it computes Wq-OW junk columns per output row, worth
// it while that is at most an eighth of the row.
func (g *geom) paddedGrid() bool {
	// 1×1 kernels read one phase only: dealing the whole input into phases
	// costs more than im2col's gather.
	if !usePaddedGrid || g.nd != 2 || g.stride[0] > 4 || g.stride[1] > 4 || g.kSize == 1 {
		return false
	}
	return (g.grid().Wq-g.out[1])*8 <= g.out[1]
}

// convGroupPadded runs one (image, group) of a 2-D convolution on the
// zero-padded input, dealt into stride phases (see gridGeom). Computed at
// every position of a Wq-wide grid (OW real columns and Wq-OW junk ones per
// row), the im2col row of kernel tap (kh, kw) is one contiguous run of a
// phase plane, so building it is one memmove instead of copies, gathers and
// zero fills per output row. The real columns are then compacted into y.
func convGroupPadded(ctx *runtime.Context, g *geom, xg []float32, p *packedA, ep epilogue, yg []float32, cg, mg int) {
	H, W := g.in[0], g.in[1]
	OH, OW := g.out[0], g.out[1]
	pt, pl := g.padBegin[0], g.padBegin[1]
	gg := g.grid()
	sh, sw, Wq := gg.sh, gg.sw, gg.Wq
	chanSize := sh * sw * gg.phase // all phase planes of one channel
	P, P2 := OH*OW, OH*Wq
	kg := cg * g.kSize
	offs := make([]int, g.kSize)
	for kh := 0; kh < g.k[0]; kh++ {
		for kw := 0; kw < g.k[1]; kw++ {
			r, c := kh*g.dil[0], kw*g.dil[1]
			offs[kh*g.k[1]+kw] = ((r%sh)*sw+c%sw)*gg.phase + (r/sh)*Wq + c/sw
		}
	}
	padp := getBuf(cg * chanSize)
	pad := *padp
	ctx.Parallel(cg, max(1, 4096/max(1, chanSize)), func(c0, c1 int) {
		for c := c0; c < c1; c++ {
			// The recycled buffer holds stale data: zero what the copies
			// below leave alone, the pad rows and columns only when the
			// plane is a single phase (stride 1), else the whole channel.
			ch := pad[c*chanSize : (c+1)*chanSize]
			if sh == 1 && sw == 1 {
				clear(ch[:pt*Wq])
				for ih := 0; ih < H; ih++ {
					row := ch[(ih+pt)*Wq : (ih+pt+1)*Wq]
					clear(row[:pl])
					clear(row[pl+W:])
				}
				clear(ch[(H+pt)*Wq:])
			} else {
				clear(ch)
			}
			if sw <= 2 {
				// Input rows of one row phase land Wq apart in it, sh·W
				// apart in x: one vector call per (row phase, column
				// phase) deals them all (the Go gather per row below was
				// 15% of MobileNetV2's stem).
				for rq := 0; rq < sh; rq++ {
					ih0 := (rq - pt%sh + sh) % sh
					if ih0 >= H {
						continue
					}
					rows := (H - ih0 + sh - 1) / sh
					r0 := ih0 + pt
					dstRow := c*chanSize + rq*sw*gg.phase + (r0/sh)*Wq
					for q := 0; q < sw; q++ {
						iw0 := (q - pl%sw + sw) % sw
						if iw0 >= W {
							continue
						}
						n := (W - iw0 + sw - 1) / sw
						dst := pad[dstRow+q*gg.phase+(iw0+pl)/sw:]
						src := xg[(c*H+ih0)*W+iw0:]
						if sw == 1 {
							copyRows(dst, Wq, src, sh*W, rows, n)
						} else {
							gatherRows2(dst, Wq, src, sh*W, rows, n)
						}
					}
				}
				continue
			}
			for ih := 0; ih < H; ih++ {
				r := ih + pt
				src := xg[(c*H+ih)*W : (c*H+ih+1)*W]
				row := c*chanSize + (r%sh)*sw*gg.phase + (r/sh)*Wq
				if sw == 1 {
					copy(pad[row+pl:], src)
					continue
				}
				// Column j = iw+pl goes to phase j%sw at j/sw: deal the
				// row out phase by phase, each a strided gather.
				for q := 0; q < sw; q++ {
					iw0 := (q - pl%sw + sw) % sw // first iw with (iw+pl)%sw == q
					if iw0 >= W {
						continue
					}
					dst := pad[row+q*gg.phase+(iw0+pl)/sw:]
					n := (W - iw0 + sw - 1) / sw
					dst = dst[:n]
					iw := iw0
					for t := range dst {
						dst[t] = src[iw]
						iw += sw
					}
				}
			}
		}
	})
	ywp := getBuf(mg * P2)
	yw := *ywp
	if ep.Accumulate {
		// The residual already in y, spread onto the grid.
		ctx.Parallel(mg, max(1, 4096/max(1, P2)), func(m0, m1 int) {
			clear(yw[m0*P2 : m1*P2])
			for m := m0; m < m1; m++ {
				for oh := 0; oh < OH; oh++ {
					copy(yw[m*P2+oh*Wq:m*P2+oh*Wq+OW], yg[m*P+oh*OW:m*P+(oh+1)*OW])
				}
			}
		})
	}
	buildCol := func(col []float32, c0, c1, q0, q1 int) {
		w := q1 - q0
		for c := c0; c < c1; c++ {
			for k, off := range offs {
				base := c*chanSize + off + q0
				copy(col[(c*g.kSize+k)*w:(c*g.kSize+k+1)*w], pad[base:base+w])
			}
		}
	}
	tile := P2
	if kg*P2 > maxColFloats {
		tile = (max(256, maxColFloats/kg) + 31) / 32 * 32
	}
	if tile >= P2 {
		colp := getBuf(kg * P2)
		col := *colp
		ctx.Parallel(cg, max(1, 4096/max(1, g.kSize*P2)), func(c0, c1 int) {
			buildCol(col, c0, c1, 0, P2)
		})
		rowsParallel(ctx, mg, P2, kg, func(m0, m1 int) {
			gemmPackedA(p, m0, m1, P2, col, P2, yw, P2, ep)
		})
		putBuf(colp)
	} else {
		parallelFixed(ctx, P2, tile, func(q0, q1 int) {
			colp := getBuf(kg * (q1 - q0))
			col := *colp
			buildCol(col, 0, cg, q0, q1)
			gemmPackedA(p, 0, mg, q1-q0, col, q1-q0, yw[q0:], P2, ep)
			putBuf(colp)
		})
	}
	ctx.Parallel(mg, max(1, 4096/max(1, P)), func(m0, m1 int) {
		for m := m0; m < m1; m++ {
			for oh := 0; oh < OH; oh++ {
				copy(yg[m*P+oh*OW:m*P+(oh+1)*OW], yw[m*P2+oh*Wq:m*P2+oh*Wq+OW])
			}
		}
	})
	putBuf(ywp)
	putBuf(padp)
}
