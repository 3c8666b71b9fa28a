package nn

import (
	"fmt"
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	for _, dt := range []tensor.DType{tensor.Float32, tensor.Uint8, tensor.Int8} {
		runtime.Register("", "MaxPool", dt, func(n *graph.Node, opset int64) (runtime.Kernel, error) {
			return newPool(n, poolMax)
		})
		runtime.Register("", "GlobalMaxPool", dt, func(n *graph.Node, opset int64) (runtime.Kernel, error) {
			return newGlobalPool(n, poolMax)
		})
	}
	register("", "AveragePool", func(n *graph.Node, opset int64) (runtime.Kernel, error) {
		return newPool(n, poolAvg)
	})
	register("", "LpPool", func(n *graph.Node, opset int64) (runtime.Kernel, error) {
		return newPool(n, poolLp)
	})
	register("", "GlobalAveragePool", func(n *graph.Node, opset int64) (runtime.Kernel, error) {
		return newGlobalPool(n, poolAvg)
	})
	register("", "GlobalLpPool", func(n *graph.Node, opset int64) (runtime.Kernel, error) {
		return newGlobalPool(n, poolLp)
	})
}

type poolKind int

const (
	poolMax poolKind = iota
	poolAvg
	poolLp
)

type pool struct {
	n            *graph.Node
	kind         poolKind
	attrs        windowAttrs
	ceil         bool
	includePad   bool
	storageOrder int64
	p            float64
}

func newPool(n *graph.Node, kind poolKind) (*pool, error) {
	p := &pool{n: n, kind: kind}
	var err error
	if p.attrs, err = readWindowAttrs(n); err != nil {
		return nil, err
	}
	if p.attrs.kernel == nil {
		return nil, fmt.Errorf("%v: kernel_shape is required", n)
	}
	ceil, err := n.AttrInt("ceil_mode", 0)
	if err != nil {
		return nil, err
	}
	p.ceil = ceil != 0
	cip, err := n.AttrInt("count_include_pad", 0)
	if err != nil {
		return nil, err
	}
	p.includePad = cip != 0
	if p.storageOrder, err = n.AttrInt("storage_order", 0); err != nil {
		return nil, err
	}
	pv, err := n.AttrInt("p", 2)
	if err != nil {
		return nil, err
	}
	p.p = float64(pv)
	if kind == poolLp && pv < 1 {
		return nil, fmt.Errorf("%v: p = %d must be positive", n, pv)
	}
	return p, nil
}

// taps lists, for one spatial dim, the input indices each output position
// reads, and how many window positions lie inside the padded input (the
// divisor of AveragePool with count_include_pad).
type taps struct {
	idx    [][]int
	padded []int
}

func dimTaps(g *geom, d int) taps {
	var t taps
	t.idx = make([][]int, g.out[d])
	t.padded = make([]int, g.out[d])
	for o := 0; o < g.out[d]; o++ {
		start := o*g.stride[d] - g.padBegin[d]
		for k := 0; k < g.k[d]; k++ {
			i := start + k*g.dil[d]
			if i >= 0 && i < g.in[d] {
				t.idx[o] = append(t.idx[o], i)
			}
			if i >= -g.padBegin[d] && i < g.in[d]+g.padEnd[d] {
				t.padded[o]++
			}
		}
	}
	return t
}

func (p *pool) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := p.n
	x := input(in, 0)
	if x == nil {
		return nil, fmt.Errorf("%v: input 0 is missing", n)
	}
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	if x.Rank() < 3 {
		return nil, fmt.Errorf("%v: input %v must have rank >= 3", n, x.Shape)
	}
	g, err := p.attrs.resolve(n, x.Shape[2:], p.attrs.kernel, p.ceil)
	if err != nil {
		return nil, err
	}
	outShape := append([]int{x.Shape[0], x.Shape[1]}, g.out...)
	y, err := ctx.New(x.DType, outShape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	var ind *tensor.Tensor
	if p.kind == poolMax && wantOutput(n, 1) {
		if ind, err = ctx.New(tensor.Int64, outShape); err != nil {
			return nil, fmt.Errorf("%v: %v", n, err)
		}
	}
	tl := make([]taps, g.nd)
	for d := range tl {
		// The tap lists cost out·k per dim; pads larger than the kernel
		// (which ONNX forbids) would only add all-padding windows.
		if g.out[d]*g.k[d] > 1<<28 || g.padBegin[d] >= (g.k[d]-1)*g.dil[d]+1 || g.padEnd[d] >= (g.k[d]-1)*g.dil[d]+1 {
			return nil, fmt.Errorf("%v: window %v with pads %v/%v too large for input %v", n, g.k, g.padBegin, g.padEnd, x.Shape)
		}
		tl[d] = dimTaps(g, d)
	}
	planes := x.Shape[0] * x.Shape[1]
	switch xd := x.Data.(type) {
	case []float32:
		yd := y.F32()
		switch {
		case g.nd == 2 && p.kind != poolLp && ind == nil:
			pool2d(ctx, g, tl, xd, yd, planes, p)
		case p.kind == poolMax:
			maxPool(ctx, g, tl, xd, yd, ind, planes, p.storageOrder)
		default:
			avgPool(ctx, g, tl, xd, yd, planes, p)
		}
	case []uint8:
		if p.kind != poolMax {
			return nil, fmt.Errorf("%v: input is %v, want float32", n, x.DType)
		}
		maxPool(ctx, g, tl, xd, y.U8(), ind, planes, p.storageOrder)
	case []int8:
		if p.kind != poolMax {
			return nil, fmt.Errorf("%v: input is %v, want float32", n, x.DType)
		}
		maxPool(ctx, g, tl, xd, y.I8(), ind, planes, p.storageOrder)
	default:
		return nil, fmt.Errorf("%v: unsupported input type %v", n, x.DType)
	}
	return []*tensor.Tensor{y, ind}, nil
}

// windows calls fn(o, positions) for every output position o of one plane,
// with the flat input offsets its window reads. The offsets slice is reused.
func windows(g *geom, tl []taps, fn func(o int, offs []int, padded int)) {
	nd := g.nd
	oi := make([]int, nd)
	offs := make([]int, 0, g.kSize)
	inStr := tensor.Strides(g.in)
	ti := make([]int, nd)
	for o := 0; o < g.outSize; o++ {
		offs = offs[:0]
		padded := 1
		empty := false
		for d := 0; d < nd; d++ {
			padded *= tl[d].padded[oi[d]]
			if len(tl[d].idx[oi[d]]) == 0 {
				empty = true
			}
		}
		if !empty {
			for d := range ti {
				ti[d] = 0
			}
			for {
				off := 0
				for d := 0; d < nd; d++ {
					off += tl[d].idx[oi[d]][ti[d]] * inStr[d]
				}
				offs = append(offs, off)
				d := nd - 1
				for ; d >= 0; d-- {
					ti[d]++
					if ti[d] < len(tl[d].idx[oi[d]]) {
						break
					}
					ti[d] = 0
				}
				if d < 0 {
					break
				}
			}
		}
		fn(o, offs, padded)
		for d := nd - 1; d >= 0; d-- {
			oi[d]++
			if oi[d] < g.out[d] {
				break
			}
			oi[d] = 0
		}
	}
}

type ordered interface{ ~float32 | ~uint8 | ~int8 }

func lowest[T ordered]() T {
	var z T
	switch any(z).(type) {
	case float32:
		return T(any(float32(math.Inf(-1))).(float32))
	case uint8:
		return 0
	}
	return T(any(int8(-128)).(int8))
}

func maxPool[T ordered](ctx *runtime.Context, g *geom, tl []taps, x, y []T, ind *tensor.Tensor, planes int, storageOrder int64) {
	// Column-major indices (storage_order 1) reverse the spatial strides.
	colStr := make([]int, g.nd)
	acc := 1
	for d := 0; d < g.nd; d++ {
		colStr[d] = acc
		acc *= g.in[d]
	}
	rowStr := tensor.Strides(g.in)
	ctx.Parallel(planes, 1, func(p0, p1 int) {
		for pl := p0; pl < p1; pl++ {
			xp := x[pl*g.inSize : (pl+1)*g.inSize]
			yp := y[pl*g.outSize : (pl+1)*g.outSize]
			windows(g, tl, func(o int, offs []int, _ int) {
				best := lowest[T]()
				arg := -1
				for _, off := range offs {
					if v := xp[off]; v > best || arg < 0 {
						best, arg = v, off
					}
				}
				yp[o] = best
				if ind != nil {
					idx := int64(pl * g.inSize)
					if arg >= 0 {
						if storageOrder == 1 {
							r := arg
							for d := 0; d < g.nd; d++ {
								idx += int64(r / rowStr[d] * colStr[d])
								r %= rowStr[d]
							}
						} else {
							idx += int64(arg)
						}
					}
					ind.I64()[pl*g.outSize+o] = idx
				}
			})
		}
	})
}

func avgPool(ctx *runtime.Context, g *geom, tl []taps, x, y []float32, planes int, p *pool) {
	ctx.Parallel(planes, 1, func(p0, p1 int) {
		for pl := p0; pl < p1; pl++ {
			xp := x[pl*g.inSize : (pl+1)*g.inSize]
			yp := y[pl*g.outSize : (pl+1)*g.outSize]
			windows(g, tl, func(o int, offs []int, padded int) {
				if p.kind == poolLp {
					var s float64
					for _, off := range offs {
						s += math.Pow(math.Abs(float64(xp[off])), p.p)
					}
					yp[o] = float32(math.Pow(s, 1/p.p))
					return
				}
				var s float32
				for _, off := range offs {
					s += xp[off]
				}
				div := len(offs)
				if p.includePad {
					div = padded
				}
				if div == 0 {
					yp[o] = 0
					return
				}
				yp[o] = s / float32(div)
			})
		}
	})
}

type globalPool struct {
	n    *graph.Node
	kind poolKind
	p    float64
}

func newGlobalPool(n *graph.Node, kind poolKind) (*globalPool, error) {
	pv, err := n.AttrInt("p", 2)
	if err != nil {
		return nil, err
	}
	if kind == poolLp && pv < 1 {
		return nil, fmt.Errorf("%v: p = %d must be positive", n, pv)
	}
	return &globalPool{n: n, kind: kind, p: float64(pv)}, nil
}

func (p *globalPool) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := p.n
	x := input(in, 0)
	if x == nil {
		return nil, fmt.Errorf("%v: input 0 is missing", n)
	}
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	if x.Rank() < 2 {
		return nil, fmt.Errorf("%v: input %v must have rank >= 2", n, x.Shape)
	}
	outShape := []int{x.Shape[0], x.Shape[1]}
	for range x.Shape[2:] {
		outShape = append(outShape, 1)
	}
	y, err := ctx.New(x.DType, outShape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	planes := x.Shape[0] * x.Shape[1]
	size := prod(x.Shape[2:])
	switch xd := x.Data.(type) {
	case []float32:
		yd := y.F32()
		ctx.Parallel(planes, max(1, 4096/max(1, size)), func(p0, p1 int) {
			for pl := p0; pl < p1; pl++ {
				xp := xd[pl*size : (pl+1)*size]
				switch p.kind {
				case poolMax:
					yd[pl] = reduceMax(xp)
				case poolAvg:
					var s float32
					for _, v := range xp {
						s += v
					}
					yd[pl] = s / float32(size)
				case poolLp:
					var s float64
					for _, v := range xp {
						s += math.Pow(math.Abs(float64(v)), p.p)
					}
					yd[pl] = float32(math.Pow(s, 1/p.p))
				}
			}
		})
	case []uint8:
		if p.kind != poolMax {
			return nil, fmt.Errorf("%v: input is %v, want float32", n, x.DType)
		}
		for pl := 0; pl < planes; pl++ {
			y.U8()[pl] = reduceMax(xd[pl*size : (pl+1)*size])
		}
	case []int8:
		if p.kind != poolMax {
			return nil, fmt.Errorf("%v: input is %v, want float32", n, x.DType)
		}
		for pl := 0; pl < planes; pl++ {
			y.I8()[pl] = reduceMax(xd[pl*size : (pl+1)*size])
		}
	default:
		return nil, fmt.Errorf("%v: unsupported input type %v", n, x.DType)
	}
	return []*tensor.Tensor{y}, nil
}

func reduceMax[T ordered](x []T) T {
	best := lowest[T]()
	for i, v := range x {
		if v > best || i == 0 {
			best = v
		}
	}
	return best
}

// pool2d is the plain-loop max/average pool over 2-D planes (ResNet's stem
// MaxPool, most AveragePools): the taps of each output row and column are
// precomputed, and the window is walked without closures or offset lists.
func pool2d(ctx *runtime.Context, g *geom, tl []taps, x, y []float32, planes int, p *pool) {
	W := g.in[1]
	OH, OW := g.out[0], g.out[1]
	if p.kind == poolMax {
		maxPool2d(ctx, g, x, y, planes)
		return
	}
	ctx.Parallel(planes, max(1, 4096/max(1, g.outSize*g.kSize)), func(p0, p1 int) {
		for pl := p0; pl < p1; pl++ {
			xp := x[pl*g.inSize : (pl+1)*g.inSize]
			yp := y[pl*g.outSize : (pl+1)*g.outSize]
			for oh := 0; oh < OH; oh++ {
				rows := tl[0].idx[oh]
				out := yp[oh*OW : (oh+1)*OW]
				for ow := range out {
					cols := tl[1].idx[ow]
					var s float32
					for _, ih := range rows {
						r := xp[ih*W : ih*W+W]
						for _, iw := range cols {
							s += r[iw]
						}
					}
					div := len(rows) * len(cols)
					if p.includePad {
						div = tl[0].padded[oh] * tl[1].padded[ow]
					}
					if div == 0 {
						out[ow] = 0
					} else {
						out[ow] = s / float32(div)
					}
				}
			}
		}
	})
}

// maxPool2d is 2-D max pooling by f32.MaxPool2D: whole rows of vector
// maxima over a −Inf-bordered copy of each plane (the Go loop here before,
// max builtin per element, took 1.4 ms of ResNet-18's 45; f32 takes 0.26).
// A window's max is the same value whatever the order it is taken in (Go's
// max, which f32 matches: NaN wins, +0 above −0), so the split over planes
// cannot change a result.
func maxPool2d(ctx *runtime.Context, g *geom, x, y []float32, planes int) {
	s := dwShape{
		C: planes, InH: g.in[0], InW: g.in[1], KH: g.k[0], KW: g.k[1],
		StrideH: g.stride[0], StrideW: g.stride[1], DilH: g.dil[0], DilW: g.dil[1],
		PadT: g.padBegin[0], PadL: g.padBegin[1], OutH: g.out[0], OutW: g.out[1],
	}
	ctx.Parallel(planes, max(1, 4096/max(1, g.outSize*g.kSize)), func(p0, p1 int) {
		maxPool2D(&s, x, p0, p1, y)
	})
}
