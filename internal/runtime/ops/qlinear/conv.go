package qlinear

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/simd/q8"
	"github.com/qtool/qtool/internal/tensor"
)

type convAttrs struct {
	autoPad string
	kernel  []int64
	strides []int64
	dil     []int64
	pads    []int64
	group   int
}

func readConvAttrs(n *graph.Node) (convAttrs, error) {
	var a convAttrs
	var err error
	if a.autoPad, err = n.AttrString("auto_pad", "NOTSET"); err != nil {
		return a, err
	}
	switch a.autoPad {
	case "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID":
	default:
		return a, fmt.Errorf("%v: unknown auto_pad %q", n, a.autoPad)
	}
	if a.kernel, err = n.AttrInts("kernel_shape", nil); err != nil {
		return a, err
	}
	if a.strides, err = n.AttrInts("strides", nil); err != nil {
		return a, err
	}
	if a.dil, err = n.AttrInts("dilations", nil); err != nil {
		return a, err
	}
	if a.pads, err = n.AttrInts("pads", nil); err != nil {
		return a, err
	}
	g, err := n.AttrInt("group", 1)
	if err != nil {
		return a, err
	}
	if g < 1 || g > 1<<20 {
		return a, fmt.Errorf("%v: group %d", n, g)
	}
	a.group = int(g)
	return a, nil
}

// convGeom is the resolved geometry over nd spatial dims.
type convGeom struct {
	nd                int
	in, k, out        []int
	stride, dil, padB []int
	inSize, kSize     int
	outSize           int
}

func (a *convAttrs) geometry(n *graph.Node, in, k []int) (*convGeom, error) {
	nd := len(in)
	g := &convGeom{nd: nd, in: in, k: k, out: make([]int, nd), stride: make([]int, nd), dil: make([]int, nd), padB: make([]int, nd)}
	get := func(name string, v []int64, want, i int, def int) (int, error) {
		if v == nil {
			return def, nil
		}
		if len(v) != want {
			return 0, fmt.Errorf("%v: %s has %d values, want %d", n, name, len(v), want)
		}
		if v[i] < 0 || v[i] > 1<<30 {
			return 0, fmt.Errorf("%v: %s %v out of range", n, name, v)
		}
		return int(v[i]), nil
	}
	if a.kernel != nil {
		if len(a.kernel) != nd {
			return nil, fmt.Errorf("%v: kernel_shape %v for %d spatial dims", n, a.kernel, nd)
		}
		for i := range k {
			if int64(k[i]) != a.kernel[i] {
				return nil, fmt.Errorf("%v: kernel_shape %v differs from the weights %v", n, a.kernel, k)
			}
		}
	}
	var err error
	g.inSize, g.kSize, g.outSize = 1, 1, 1
	for d := 0; d < nd; d++ {
		if g.stride[d], err = get("strides", a.strides, nd, d, 1); err != nil {
			return nil, err
		}
		if g.dil[d], err = get("dilations", a.dil, nd, d, 1); err != nil {
			return nil, err
		}
		if g.stride[d] < 1 || g.dil[d] < 1 {
			return nil, fmt.Errorf("%v: strides and dilations must be positive", n)
		}
		pb, err := get("pads", a.pads, 2*nd, d, 0)
		if err != nil {
			return nil, err
		}
		pe, err := get("pads", a.pads, 2*nd, d+nd, 0)
		if err != nil {
			return nil, err
		}
		ext := g.dil[d]*(k[d]-1) + 1
		switch a.autoPad {
		case "VALID":
			pb, pe = 0, 0
		case "SAME_UPPER", "SAME_LOWER":
			o := (in[d] + g.stride[d] - 1) / g.stride[d]
			total := max(0, (o-1)*g.stride[d]+ext-in[d])
			pb = total / 2
			if a.autoPad == "SAME_LOWER" {
				pb = total - total/2
			}
			pe = total - pb
		}
		g.padB[d] = pb
		span := in[d] + pb + pe - ext
		if span < 0 {
			return nil, fmt.Errorf("%v: kernel %v larger than the padded input %v", n, k, in)
		}
		g.out[d] = span/g.stride[d] + 1
		g.inSize *= in[d]
		g.kSize *= k[d]
		g.outSize *= g.out[d]
	}
	if _, err := checkedProduct(g.outSize, g.kSize); err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	if g.inSize >= 1<<31 {
		return nil, fmt.Errorf("%v: input of %d pixels is too large", n, g.inSize)
	}
	return g, nil
}

type convKernel struct {
	node  *graph.Node
	qlin  bool
	attrs convAttrs
	wIdx  int
	wzIdx int
	// Weights packed at build time when they and their zero point are
	// constants: one PackedB per group.
	constW *tensor.Tensor
	dw     *q8.DWWeights // depthwise layers, instead of packs
	// window caches the pixel table of the last input geometry: it depends
	// only on shapes and attributes, which rarely change between runs.
	window atomic.Pointer[windowTable]
	packs  []*q8.PackedB
	pwz    []int32
	// rowPack holds few-channel 2-D weights as one run per kernel row
	// (kw·Cin bytes, rowTaps), nil when that path does not apply.
	rowPack *q8.PackedB
	// nhwc is com.microsoft QLinearConv's channels_last: x is [N, spatial…,
	// C] and y [N, spatial…, Cout] (W stays [Cout][Cin/g][k…]). The kernels
	// work on NHWC pixels anyway, so this drops both layout conversions.
	nhwc bool
}

func newQLinearConv(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) < 8 || len(n.Inputs) > 9 {
		return nil, fmt.Errorf("%v: QLinearConv takes 8 or 9 inputs, got %d", n, len(n.Inputs))
	}
	return newConv(n, &convKernel{node: n, qlin: true, wIdx: 3, wzIdx: 5})
}

func newMSQLinearConv(n *graph.Node, opset int64) (runtime.Kernel, error) {
	cl, err := n.AttrInt("channels_last", 0)
	if err != nil {
		return nil, err
	}
	if len(n.Inputs) < 8 || len(n.Inputs) > 9 {
		return nil, fmt.Errorf("%v: QLinearConv takes 8 or 9 inputs, got %d", n, len(n.Inputs))
	}
	return newConv(n, &convKernel{node: n, qlin: true, wIdx: 3, wzIdx: 5, nhwc: cl != 0})
}

func newConvInteger(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) < 2 || len(n.Inputs) > 4 {
		return nil, fmt.Errorf("%v: ConvInteger takes 2 to 4 inputs, got %d", n, len(n.Inputs))
	}
	return newConv(n, &convKernel{node: n, wIdx: 1, wzIdx: 3})
}

func newConv(n *graph.Node, k *convKernel) (runtime.Kernel, error) {
	var err error
	if k.attrs, err = readConvAttrs(n); err != nil {
		return nil, err
	}
	wv := n.Input(k.wIdx)
	if wv == nil || wv.Const == nil {
		return k, nil
	}
	var zt *tensor.Tensor
	if zv := n.Input(k.wzIdx); zv != nil {
		if zv.Const == nil {
			return k, nil
		}
		zt = zv.Const
	}
	w := wv.Const
	if w.Rank() < 3 || (w.DType != tensor.Uint8 && w.DType != tensor.Int8) || w.Validate() != nil ||
		w.Shape[0]%k.attrs.group != 0 {
		return k, nil // Run reports the problem
	}
	wz, err := zeroPointsIn(n, []*tensor.Tensor{zt}, 0, "w_zero_point", w.DType, w.Shape[0])
	if err != nil {
		return nil, err
	}
	k.constW = w
	if isDepthwise(w, k.attrs.group) {
		k.dw = packDW(w, wz)
	} else {
		k.packs, k.pwz = packConvWeights(w, wz, k.attrs.group)
		if rowTapsFit(w, k.attrs) {
			k.rowPack = packRowTaps(w)
		}
	}
	return k, nil
}

// rowTapsFit reports the layers the row-tap GEMM runs: 2-D, one group,
// few input channels (each tap of the ordinary indirect GEMM would be a
// KcPad(Cin)-byte run, mostly padding and per-tap overhead: ResNet's 7x7
// stem ran at a quarter of the 3x3 layers' rate), kernel wider than one
// pixel, no horizontal dilation.
func rowTapsFit(w *tensor.Tensor, a convAttrs) bool {
	if w.Rank() != 4 || a.group != 1 || w.Shape[1] >= 8 || w.Shape[3] < 2 || w.Shape[1]*w.Shape[3] > 256 {
		return false
	}
	return a.dil == nil || (len(a.dil) == 2 && a.dil[1] == 1)
}

// packRowTaps packs W [Cout][Cin][kh][kw] as B with K = kh·KcPad(kw·Cin):
// row (i, j·Cin+ci) holds W[·][ci][i][j], zeros in the padding. Symmetric
// weights only (the caller checks the zero points).
func packRowTaps(w *tensor.Tensor) *q8.PackedB {
	ws, _ := s8Weights(w, []int32{0})
	cout, cin, kh, kw := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	run := q8.KcPad(kw * cin)
	kdim := kh * run
	re := make([]int8, cout*kdim)
	for oc := 0; oc < cout; oc++ {
		for ci := 0; ci < cin; ci++ {
			for i := 0; i < kh; i++ {
				for j := 0; j < kw; j++ {
					re[oc*kdim+i*run+j*cin+ci] = ws[((oc*cin+ci)*kh+i)*kw+j]
				}
			}
		}
	}
	return q8.PackB(kdim, cout, re, kdim, true)
}

// rowTapGeom is the bordered image rowTapImage builds: Hp×Wp pixels (padT
// rows above, padL pixels left, enough below and right for every window),
// plus a run's tail.
func rowTapGeom(geo *convGeom, c int) (Hp, Wp, run int) {
	kh, kw := geo.k[0], geo.k[1]
	Hp = max(geo.padB[0]+geo.in[0], (geo.out[0]-1)*geo.stride[0]+(kh-1)*geo.dil[0]+1)
	Wp = max(geo.padB[1]+geo.in[1], (geo.out[1]-1)*geo.stride[1]+kw)
	return Hp, Wp, q8.KcPad(kw * c)
}

// rowTapImage writes the NHWC image xh [H][W][C] into xp with the zero
// point around it (rowTapGeom), so that each kernel row of each window is
// one contiguous run. Only the border is filled: the image rows overwrite
// the rest.
func rowTapImage(xp []uint8, xh []uint8, geo *convGeom, c int, zp uint8) []uint8 {
	H, W := geo.in[0], geo.in[1]
	padT, padL := geo.padB[0], geo.padB[1]
	Hp, Wp, run := rowTapGeom(geo, c)
	xp = growU8(&xp, Hp*Wp*c+run)
	fill := func(b []uint8) {
		for i := range b {
			b[i] = zp
		}
	}
	fill(xp[:(padT*Wp+padL)*c])
	for ih := 0; ih < H; ih++ {
		at := ((ih+padT)*Wp + padL) * c
		copy(xp[at:], xh[ih*W*c:(ih+1)*W*c])
		// This row's right border and the next row's left one.
		end := at + W*c
		fill(xp[end:min(len(xp), end+(Wp-W)*c)])
	}
	fill(xp[((H+padT)*Wp+padL)*c:])
	return xp
}

// rowTapOffsets is the run offset into rowTapImage's image per output
// pixel and kernel row.
func rowTapOffsets(geo *convGeom, c int) []int {
	kh, OH, OW := geo.k[0], geo.out[0], geo.out[1]
	_, Wp, _ := rowTapGeom(geo, c)
	offs := make([]int, OH*OW*kh)
	for oh := 0; oh < OH; oh++ {
		for ow := 0; ow < OW; ow++ {
			o := offs[(oh*OW+ow)*kh:]
			for i := 0; i < kh; i++ {
				o[i] = ((oh*geo.stride[0]+i*geo.dil[0])*Wp + ow*geo.stride[1]) * c
			}
		}
	}
	return offs
}

// packConvWeights reorders W [Cout][Cin/g][k…] per group to rows of
// (kernel offset, input channel padded to q8.KcPad) with zero weights in the
// padding, and packs each group as B = W_g^T: the layout both the im2col
// GEMM and q8.GemmIndirect read.
func packConvWeights(w *tensor.Tensor, wz []int32, group int) ([]*q8.PackedB, []int32) {
	ws, z := s8Weights(w, wz)
	cout, cin := w.Shape[0], w.Shape[1]
	kk := 1
	for _, d := range w.Shape[2:] {
		kk *= d
	}
	cg := cout / group
	kcp := q8.KcPad(cin)
	kdim := kk * kcp
	packs := make([]*q8.PackedB, group)
	re := make([]int8, cg*kdim)
	for g := range packs {
		for j := 0; j < cg; j++ {
			src := ws[(g*cg+j)*kk*cin:]
			dst := re[j*kdim : (j+1)*kdim]
			for ci := 0; ci < cin; ci++ {
				for o := 0; o < kk; o++ {
					dst[o*kcp+ci] = src[ci*kk+o]
				}
			}
		}
		packs[g] = q8.PackB(kdim, cg, re, kdim, true)
	}
	return packs, z
}

func (k *convKernel) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.node
	x, err := int8In(n, in, 0, "x")
	if err != nil {
		return nil, err
	}
	w, err := int8In(n, in, k.wIdx, "w")
	if err != nil {
		return nil, err
	}
	if x.Rank() < 3 || w.Rank() != x.Rank() {
		return nil, fmt.Errorf("%v: x %v and w %v must both be [N, C, spatial…]", n, x.Shape, w.Shape)
	}
	group := k.attrs.group
	batch, c := x.Shape[0], x.Shape[1]
	spatial := x.Shape[2:]
	if k.nhwc {
		c = x.Shape[x.Rank()-1]
		spatial = x.Shape[1 : x.Rank()-1]
	}
	cout, cin := w.Shape[0], w.Shape[1]
	if cin*group != c || cout%group != 0 {
		return nil, fmt.Errorf("%v: x has %d channels, w %v with group %d", n, c, w.Shape, group)
	}
	geo, err := k.attrs.geometry(n, spatial, w.Shape[2:])
	if err != nil {
		return nil, err
	}
	cg := cout / group
	kcp := q8.KcPad(cin)
	kdim := geo.kSize * kcp

	// x_zero_point is input 2 of both ops.
	xz, err := zeroPointsIn(n, in, 2, "x_zero_point", x.DType, 1)
	if err != nil {
		return nil, err
	}
	if len(xz) != 1 {
		return nil, fmt.Errorf("%v: x_zero_point must be a scalar", n)
	}
	wz, err := zeroPointsIn(n, in, k.wzIdx, "w_zero_point", w.DType, cout)
	if err != nil {
		return nil, err
	}

	outDT := tensor.Int32
	var scale []float32
	var bias []int32
	var yz int32
	if k.qlin {
		sx, sdt, err := scalesIn(n, in, 1, "x_scale", 1)
		if err != nil {
			return nil, err
		}
		sw, _, err := scalesIn(n, in, 4, "w_scale", cout)
		if err != nil {
			return nil, err
		}
		sy, _, err := scalesIn(n, in, 6, "y_scale", 1)
		if err != nil {
			return nil, err
		}
		yzt := input(in, 7)
		if yzt == nil {
			return nil, fmt.Errorf("%v: y_zero_point is missing", n)
		}
		outDT = yzt.DType
		if outDT != tensor.Uint8 && outDT != tensor.Int8 {
			return nil, fmt.Errorf("%v: y_zero_point is %v, want uint8 or int8", n, outDT)
		}
		yzs, err := zeroPointsIn(n, in, 7, "y_zero_point", outDT, 1)
		if err != nil {
			return nil, err
		}
		yz = yzs[0]
		scale = multipliers(sx[0], sw, sy[0], sdt)
		if bt := input(in, 8); bt != nil {
			if bt.DType != tensor.Int32 || bt.Len() != cout || validate(bt) != nil {
				return nil, fmt.Errorf("%v: bias must be int32 [%d], got %v %v", n, cout, bt.DType, bt.Shape)
			}
			bias = bt.I32()
		}
	}

	depthwise := isDepthwise(w, group)
	var packs []*q8.PackedB
	var wzs []int32
	var dw *q8.DWWeights
	switch {
	case depthwise && k.constW == w:
		dw = k.dw
	case depthwise:
		dw = packDW(w, wz)
	case k.constW == w:
		packs, wzs = k.packs, k.pwz
	default:
		packs, wzs = packConvWeights(w, wz, group)
	}
	xzs := xz
	if x.DType == tensor.Int8 {
		xzs = []int32{xz[0] + 128}
	}

	outShape := append([]int{batch, cout}, geo.out...)
	if k.nhwc {
		outShape = append(append([]int{batch}, geo.out...), cout)
	}
	if _, err := checkedProduct(append([]int{kdim}, outShape...)...); err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	out, err := ctx.NewUninit(outDT, outShape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	if out.Len() == 0 {
		return []*tensor.Tensor{out}, nil
	}

	win := k.windowFor(geo, c)
	allPix := win.pix

	if depthwise {
		k.runDepthwise(ctx, x, out, geo, win.offs, dw, xzs[0], scale, bias, yz)
		return []*tensor.Tensor{out}, nil
	}

	// With symmetric weights (all zero points 0 after the shift) the GEMM
	// reads the NHWC image through pointers (no im2col matrix); otherwise
	// the row sums of an explicit patch matrix are needed.
	indirect := true
	for _, z := range wzs {
		indirect = indirect && z == 0
	}
	// xh is the NHWC copy of one image followed by a run of zero points
	// that padding pixels point at; runs are read KcPad(cin) bytes long.
	xs := geo.inSize
	zoff := xs * c
	xhBuf := getScratch()
	defer scratchPool.Put(xhBuf)
	xh := growU8(&xhBuf.u8, zoff+kcp)
	for i := zoff; i < len(xh); i++ {
		xh[i] = uint8(xzs[0])
	}
	P := geo.outSize
	// Each GEMM call pays a per-column setup (zero-point and bias terms);
	// with a short K (MobileNetV2's 16-96 channel 1x1 layers) 96 rows do
	// too little work to amortize it, so blocks grow to ~48K MACs per
	// column, up to 960 rows.
	blockRows := 96
	if kdim > 0 && kdim < 512 {
		blockRows = min(960, 96*(512/kdim))
	}
	blockRows = threadBlock(ctx, P, 96, blockRows)
	if k.nhwc && indirect && (ctx == nil || ctx.Threads <= 1) {
		// Blocks only bound the im2col matrix and the NCHW staging
		// tile; channels-last indirect layers on one thread have
		// neither, so one call pays the per-call setup once.
		blockRows = max(blockRows, P)
	}
	// Tables are prepared in tiles of six rows: blocks start on one.
	blockRows = (blockRows + 5) / 6 * 6
	blocks := (P + blockRows - 1) / blockRows
	rowPack := k.rowPack
	if k.constW != w || !indirect || geo.nd != 2 {
		rowPack = nil
	}
	var xp []uint8
	var rtTab, tab *q8.IndirectTable
	if rowPack != nil {
		rtTab = win.rowTaps(geo, c)
	} else if indirect {
		tab = win.table(geo.kSize)
	}
	// A uint8 channels-last image whose windows never reach the padding
	// (1x1 layers, unpadded ones) is read where it is: the copy was a
	// sizeable part of MobileNetV2's large pointwise layers. So is the
	// source of the row-tap image.
	inPlace := k.nhwc && x.DType == tensor.Uint8 && (rowPack != nil || (!win.pad && kcp*group <= c))
	for b := 0; b < batch; b++ {
		if inPlace {
			xh = x.U8()[b*c*xs : (b+1)*c*xs]
		} else {
			k.image(xh, x, b, c, xs)
		}
		if rowPack != nil {
			// The outer scratch's a is free: block workers take their
			// own.
			xp = rowTapImage(xhBuf.a, xh, geo, c, uint8(xzs[0]))
			xhBuf.a = xp
		}
		for g := 0; g < group; g++ {
			pb := packs[g]
			bz := wzs
			if len(wzs) > 1 {
				bz = wzs[g*cg : (g+1)*cg]
			}
			var req *q8.Requant
			if k.qlin {
				req = &q8.Requant{OutZero: yz, Scale: scale, Ldc: cg}
				if len(scale) > 1 {
					req.Scale = scale[g*cg : (g+1)*cg]
				}
				if bias != nil {
					req.Bias = bias[g*cg : (g+1)*cg]
				}
			}
			ctx.Parallel(blocks, 1, func(lo, hi int) {
				bs := getScratch()
				defer scratchPool.Put(bs)
				var a []uint8
				var offs []int
				if indirect && g > 0 && rowPack == nil {
					// Only the later groups rebuild offsets: group 0
					// reads the window table.
					offs = growInt(&bs.offs, blockRows*geo.kSize)
				} else if !indirect {
					a = growU8(&bs.a, blockRows*kdim)
				}
				var t32 []int32
				var t8 []uint8
				var o q8.Output
				if k.nhwc {
					// Rows go straight to the output (row stride Cout).
				} else if req == nil {
					t32 = make([]int32, blockRows*cg)
					o = q8.Int32(t32, cg)
				} else {
					t8 = growU8(&bs.u8, blockRows*cg)
					rq := *req
					if outDT == tensor.Uint8 {
						rq.OutU8 = t8
					} else {
						rq.OutS8 = s8View(t8)
					}
					o = q8.Output{Q: &rq}
				}
				for blk := lo; blk < hi; blk++ {
					p0 := blk * blockRows
					rows := min(blockRows, P-p0)
					pix := allPix[p0*geo.kSize : (p0+rows)*geo.kSize]
					if k.nhwc {
						at := (b*P+p0)*cout + g*cg
						switch {
						case req == nil:
							o = q8.Int32(out.I32()[at:], cout)
						case outDT == tensor.Uint8:
							rq := *req
							rq.Ldc, rq.OutU8 = cout, out.U8()[at:]
							o = q8.Output{Q: &rq}
						default:
							rq := *req
							rq.Ldc, rq.OutS8 = cout, out.I8()[at:]
							o = q8.Output{Q: &rq}
						}
					}
					if rowPack != nil {
						q8.GemmIndirectTable(rtTab, p0, p0+rows, geo.k[1]*c, xp, xzs[0], rowPack, 0, cg, o)
					} else if indirect && g == 0 {
						q8.GemmIndirectTable(tab, p0, p0+rows, cin, xh, xzs[0], pb, 0, cg, o)
					} else if indirect {
						for i, lin := range pix {
							if lin < 0 {
								offs[i] = zoff
							} else {
								offs[i] = int(lin)*c + g*cin
							}
						}
						q8.GemmIndirect(rows, geo.kSize, cin, xh, offs, xzs[0], pb, 0, cg, o)
					} else {
						im2col(a, xh, pix, geo.kSize, c, g*cin, cin, kcp, uint8(xzs[0]))
						q8.Gemm(rows, a, kdim, xzs[0], pb, bz, 0, cg, o)
					}
					if k.nhwc {
						continue
					}
					if req == nil {
						o32 := out.I32()
						for j := 0; j < cg; j++ {
							dst := o32[((b*cout)+g*cg+j)*P+p0:]
							for r := 0; r < rows; r++ {
								dst[r] = t32[r*cg+j]
							}
						}
						continue
					}
					var ob []uint8
					if outDT == tensor.Uint8 {
						ob = out.U8()
					} else {
						ob = u8View(out.I8())
					}
					q8.TransposeU8(ob[(b*cout+g*cg)*P+p0:], P, t8, cg, rows, cg, 0)
				}
			})
		}
	}
	return []*tensor.Tensor{out}, nil
}

// threadBlock caps a block size of want rows (at least lo) so that P rows
// still give every thread two blocks: bigger blocks only amortize per-call
// setup, which is not worth idling a core.
func threadBlock(ctx *runtime.Context, P, lo, want int) int {
	if ctx == nil || ctx.Threads <= 1 {
		return want
	}
	return max(lo, min(want, (P+2*ctx.Threads-1)/(2*ctx.Threads)))
}

// isDepthwise reports the layers DWConv runs: one input and one output
// channel per group.
func isDepthwise(w *tensor.Tensor, group int) bool {
	return group > 1 && w.Shape[1] == 1 && w.Shape[0] == group
}

func packDW(w *tensor.Tensor, wz []int32) *q8.DWWeights {
	ws, z := s8Weights(w, wz)
	kk := 1
	for _, d := range w.Shape[2:] {
		kk *= d
	}
	return q8.PackDW(w.Shape[0], kk, ws, z)
}

// runDepthwise is the depthwise layer over NHWC pixels: DWConv on blocks of
// output pixels, then the block is moved to NCHW.
func (k *convKernel) runDepthwise(ctx *runtime.Context, x, out *tensor.Tensor, geo *convGeom, allOffs []int,
	dw *q8.DWWeights, xz int32, scale []float32, bias []int32, yz int32) {
	batch, c := x.Shape[0], x.Shape[1]
	if k.nhwc {
		c = x.Shape[x.Rank()-1]
	}
	kk, P := geo.kSize, geo.outSize
	if k.dw3x3(ctx, x, out, geo, dw, xz, scale, bias, yz) {
		return
	}
	xhBuf := getScratch()
	defer scratchPool.Put(xhBuf)
	// The NHWC image, then one pixel of zero points for the padding taps.
	zoff := geo.inSize * c
	xh := growU8(&xhBuf.u8, zoff+c)
	for i := zoff; i < len(xh); i++ {
		xh[i] = uint8(xz)
	}
	// 256 rows: the per-call column setup of DWConv stays small next to
	// the taps (it was an eighth of DWConv at 64 rows).
	blockRows := threadBlock(ctx, P, 64, 256)
	blocks := (P + blockRows - 1) / blockRows
	for b := 0; b < batch; b++ {
		k.image(xh, x, b, c, geo.inSize)
		ctx.Parallel(blocks, 1, func(lo, hi int) {
			bs := getScratch()
			defer scratchPool.Put(bs)
			var t32 []int32
			var o q8.Output
			if k.nhwc {
				// Rows go straight to the output.
			} else if k.qlin {
				t8 := growU8(&bs.a, blockRows*c)
				rq := &q8.Requant{Bias: bias, Scale: scale, OutZero: yz, Ldc: c}
				if out.DType == tensor.Uint8 {
					rq.OutU8 = t8
				} else {
					rq.OutS8 = s8View(t8)
				}
				o = q8.Output{Q: rq}
			} else {
				t32 = make([]int32, blockRows*c)
				o = q8.Int32(t32, c)
			}
			for blk := lo; blk < hi; blk++ {
				p0 := blk * blockRows
				rows := min(blockRows, P-p0)
				if k.nhwc {
					at := (b*P + p0) * c
					switch {
					case !k.qlin:
						o = q8.Int32(out.I32()[at:], c)
					case out.DType == tensor.Uint8:
						o = q8.Output{Q: &q8.Requant{Bias: bias, Scale: scale, OutZero: yz, Ldc: c, OutU8: out.U8()[at:]}}
					default:
						o = q8.Output{Q: &q8.Requant{Bias: bias, Scale: scale, OutZero: yz, Ldc: c, OutS8: out.I8()[at:]}}
					}
					q8.DWConv(rows, xh, allOffs[p0*kk:(p0+rows)*kk], xz, dw, o)
					continue
				}
				q8.DWConv(rows, xh, allOffs[p0*kk:(p0+rows)*kk], xz, dw, o)
				if !k.qlin {
					o32 := out.I32()
					for j := 0; j < c; j++ {
						dst := o32[(b*c+j)*P+p0:]
						for r := 0; r < rows; r++ {
							dst[r] = t32[r*c+j]
						}
					}
					continue
				}
				var ob []uint8
				if out.DType == tensor.Uint8 {
					ob = out.U8()
				} else {
					ob = u8View(out.I8())
				}
				q8.TransposeU8(ob[b*c*P+p0:], P, bs.a, c, rows, c, 0)
			}
		})
	}
}

// dw3x3 runs the layer on q8.DWConv3x3 where it applies (a uint8
// channels-last 3×3 layer with padding 1 at the start of both dims and stride
// 1 or 2, requantized), reading x in place; it reports false, having done
// nothing, otherwise.
func (k *convKernel) dw3x3(ctx *runtime.Context, x, out *tensor.Tensor, geo *convGeom, dw *q8.DWWeights,
	xz int32, scale []float32, bias []int32, yz int32) bool {
	if !k.nhwc || !k.qlin || x.DType != tensor.Uint8 || geo.nd != 2 || geo.k[0] != 3 || geo.k[1] != 3 ||
		geo.padB[0] != 1 || geo.padB[1] != 1 || geo.dil[0] != 1 || geo.dil[1] != 1 || geo.stride[0] != geo.stride[1] {
		return false
	}
	s, h, w := geo.stride[0], geo.in[0], geo.in[1]
	oh, ow := geo.out[0], geo.out[1]
	// With no end padding the last window still ends inside the image
	// (what DWConv3x3 assumes) exactly when the output sizes agree.
	if (s != 1 && s != 2) || oh != (h-1)/s+1 || ow != (w-1)/s+1 {
		return false
	}
	batch, c := x.Shape[0], x.Shape[x.Rank()-1]
	img, P := h*w*c, oh*ow
	rq := func(b, y0 int) q8.Output {
		at := (b*P + y0*ow) * c
		r := &q8.Requant{Bias: bias, Scale: scale, OutZero: yz, Ldc: c}
		if out.DType == tensor.Uint8 {
			r.OutU8 = out.U8()[at:]
		} else {
			r.OutS8 = out.I8()[at:]
		}
		return q8.Output{Q: r}
	}
	if !q8.DWConv3x3(x.U8()[:img], h, w, c, s, xz, dw, 0, 0, rq(0, 0)) {
		return false
	}
	band := oh
	if ctx != nil && ctx.Threads > 1 {
		band = max(1, (oh+2*ctx.Threads-1)/(2*ctx.Threads))
	}
	for b := 0; b < batch; b++ {
		ctx.Parallel((oh+band-1)/band, 1, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				y0, y1 := i*band, min(oh, (i+1)*band)
				q8.DWConv3x3(x.U8()[b*img:(b+1)*img], h, w, c, s, xz, dw, y0, y1, rq(b, y0))
			}
		})
	}
	return true
}

// image puts image b of x in dst as NHWC uint8: a transpose, or for
// channels_last input a copy.
func (k *convKernel) image(dst []uint8, x *tensor.Tensor, b, c, s int) {
	if !k.nhwc {
		toNHWC(dst, x, b, c, s)
		return
	}
	if x.DType == tensor.Uint8 {
		copy(dst[:c*s], x.U8()[b*c*s:])
		return
	}
	for i, v := range u8View(x.I8())[b*c*s : (b+1)*c*s] {
		dst[i] = v ^ 0x80
	}
}

// toNHWC copies image b of x [N][C][S] to dst [S][C] as uint8 (int8 shifted
// by XOR 0x80).
func toNHWC(dst []uint8, x *tensor.Tensor, b, c, s int) {
	var flip uint8
	var src []uint8
	if x.DType == tensor.Int8 {
		flip = 0x80
		src = u8View(x.I8())
	} else {
		src = x.U8()
	}
	q8.TransposeU8(dst, c, src[b*c*s:(b+1)*c*s], s, c, s, flip)
}

// windowTable is windowPixels for every output position of one geometry.
// offs holds the same table as byte offsets into an NHWC image of c
// channels followed by its padding run (pixel·c, or inSize·c for padding
// taps): what GemmIndirect and DWConv read for group 0, so the per-block
// loop that used to rebuild it (7% of ResNet-18) is gone.
type windowTable struct {
	in, k, out, stride, dil, padB []int
	c                             int
	pix                           []int32
	offs                          []int
	pad                           bool // some window reaches the padding
	it, rt                        atomic.Pointer[q8.IndirectTable]
}

// table is offs prepared for q8.GemmIndirectTable, once.
func (w *windowTable) table(kk int) *q8.IndirectTable {
	if t := w.it.Load(); t != nil {
		return t
	}
	t := q8.NewIndirectTable(len(w.offs)/kk, kk, w.offs)
	w.it.Store(t)
	return t
}

// rowTaps is rowTapOffsets for this geometry as a q8.IndirectTable, once.
func (w *windowTable) rowTaps(geo *convGeom, c int) *q8.IndirectTable {
	if t := w.rt.Load(); t != nil {
		return t
	}
	t := q8.NewIndirectTable(geo.outSize, geo.k[0], rowTapOffsets(geo, c))
	w.rt.Store(t)
	return t
}

func (k *convKernel) windowFor(geo *convGeom, c int) *windowTable {
	if w := k.window.Load(); w != nil && w.c == c && slices.Equal(w.in, geo.in) && slices.Equal(w.k, geo.k) &&
		slices.Equal(w.out, geo.out) && slices.Equal(w.stride, geo.stride) && slices.Equal(w.dil, geo.dil) &&
		slices.Equal(w.padB, geo.padB) {
		return w
	}
	// Kernel offsets per spatial dim, for the im2col gather.
	koff := make([][]int, geo.kSize)
	for o := range koff {
		koff[o] = make([]int, geo.nd)
		r := o
		for d := geo.nd - 1; d >= 0; d-- {
			koff[o][d] = (r % geo.k[d]) * geo.dil[d]
			r /= geo.k[d]
		}
	}
	w := &windowTable{in: geo.in, k: geo.k, out: geo.out, stride: geo.stride, dil: geo.dil, padB: geo.padB,
		c: c, pix: make([]int32, geo.outSize*geo.kSize), offs: make([]int, geo.outSize*geo.kSize)}
	windowPixels(w.pix, geo, koff, 0, geo.outSize)
	zoff := geo.inSize * c
	for i, lin := range w.pix {
		w.offs[i] = zoff
		if lin >= 0 {
			w.offs[i] = int(lin) * c
		} else {
			w.pad = true
		}
	}
	k.window.Store(w)
	return w
}

// windowPixels sets pix[r*kk+o] to the input pixel (linear NHWC index) that
// kernel offset o of output position p0+r reads, or −1 where the window
// hangs over the padding.
func windowPixels(pix []int32, geo *convGeom, koff [][]int, p0, rows int) {
	nd := geo.nd
	kk := len(koff)
	pos := make([]int, nd)
	r := p0
	for d := nd - 1; d >= 0; d-- {
		pos[d] = r % geo.out[d]
		r /= geo.out[d]
	}
	base := make([]int, nd)
	for r := 0; r < rows; r++ {
		for d := 0; d < nd; d++ {
			base[d] = pos[d]*geo.stride[d] - geo.padB[d]
		}
		for o, ko := range koff {
			lin := 0
			for d := 0; d < nd; d++ {
				i := base[d] + ko[d]
				if i < 0 || i >= geo.in[d] {
					lin = -1
					break
				}
				lin = lin*geo.in[d] + i
			}
			pix[r*kk+o] = int32(lin)
		}
		for d := nd - 1; d >= 0; d-- {
			pos[d]++
			if pos[d] < geo.out[d] {
				break
			}
			pos[d] = 0
		}
	}
}

// im2col fills the patch matrix for the pixels of windowPixels: row r,
// columns o·kcp+ci hold input channel c0+ci of pixel pix[r*kk+o] (the zero
// point for padding pixels and for the channel padding ci >= cin).
func im2col(a, xh []uint8, pix []int32, kk, c, c0, cin, kcp int, zp uint8) {
	for i, lin := range pix {
		dst := a[i*kcp : (i+1)*kcp]
		n := 0
		if lin >= 0 {
			p := int(lin)*c + c0
			n = copy(dst, xh[p:p+cin])
		}
		for j := n; j < kcp; j++ {
			dst[j] = zp
		}
	}
}

// convScratch holds the buffers of one conv call or one block worker,
// pooled so that steady-state inference allocates only its outputs.
type convScratch struct {
	u8, a []uint8
	offs  []int
}

var scratchPool sync.Pool

func getScratch() *convScratch {
	if s, ok := scratchPool.Get().(*convScratch); ok {
		return s
	}
	return new(convScratch)
}

func growU8(b *[]uint8, n int) []uint8 {
	if cap(*b) < n {
		*b = make([]uint8, n)
	}
	*b = (*b)[:n]
	return *b
}

func growInt(b *[]int, n int) []int {
	if cap(*b) < n {
		*b = make([]int, n)
	}
	*b = (*b)[:n]
	return *b
}
