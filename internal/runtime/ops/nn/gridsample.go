package nn

import (
	"fmt"
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	register("", "GridSample", newGridSample)
}

// gridSample is GridSample (opset 16: 2-D, bilinear/nearest/bicubic; opset
// 20: N-D, linear/nearest/cubic), following the ONNX reference (PyTorch's
// grid_sampler): grid coordinates in [-1, 1] are mapped to pixels, pulled
// back inside by the padding mode, and interpolated separably.
type gridSample struct {
	n            *graph.Node
	mode         string // nearest, linear, cubic
	padding      string // zeros, border, reflection
	alignCorners bool
}

func newGridSample(n *graph.Node, opset int64) (runtime.Kernel, error) {
	k := &gridSample{n: n}
	def := "linear"
	if opset < 20 {
		def = "bilinear"
	}
	mode, err := n.AttrString("mode", def)
	if err != nil {
		return nil, err
	}
	switch mode {
	case "bilinear", "linear":
		k.mode = "linear"
	case "bicubic", "cubic":
		k.mode = "cubic"
	case "nearest":
		k.mode = mode
	default:
		return nil, fmt.Errorf("%v: unknown mode %q", n, mode)
	}
	if k.padding, err = n.AttrString("padding_mode", "zeros"); err != nil {
		return nil, err
	}
	switch k.padding {
	case "zeros", "border", "reflection":
	default:
		return nil, fmt.Errorf("%v: unknown padding_mode %q", n, k.padding)
	}
	ac, err := n.AttrInt("align_corners", 0)
	if err != nil {
		return nil, err
	}
	k.alignCorners = ac != 0
	return k, nil
}

// reflect folds x into [lo, hi] by mirroring at the borders.
func reflect(x, lo, hi float64) float64 {
	rng := hi - lo
	if rng <= 0 {
		return lo
	}
	switch {
	case x < lo:
		dx := lo - x
		k := math.Floor(dx / rng)
		r := dx - k*rng
		if int64(k)%2 == 0 {
			return lo + r
		}
		return hi - r
	case x > hi:
		dx := x - hi
		k := math.Floor(dx / rng)
		r := dx - k*rng
		if int64(k)%2 == 0 {
			return hi - r
		}
		return lo + r
	}
	return x
}

func cubicCoeffs(t float64, c *[4]float64) {
	const a = -0.75
	t = math.Abs(t)
	c[0] = ((a*(t+1)-5*a)*(t+1)+8*a)*(t+1) - 4*a
	c[1] = ((a+2)*t-(a+3))*t*t + 1
	c[2] = ((a+2)*(1-t)-(a+3))*(1-t)*(1-t) + 1
	c[3] = ((a*(2-t)-5*a)*(2-t)+8*a)*(2-t) - 4*a
}

func (k *gridSample) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.n
	x, err := f32In(n, in, 0)
	if err != nil {
		return nil, err
	}
	grid, err := f32In(n, in, 1)
	if err != nil {
		return nil, err
	}
	nd := x.Rank() - 2
	if nd < 1 || grid.Rank() != nd+2 || grid.Shape[0] != x.Shape[0] || grid.Shape[nd+1] != nd {
		return nil, fmt.Errorf("%v: X %v and grid %v do not fit (grid must be [N, out..., %d])", n, x.Shape, grid.Shape, nd)
	}
	N, C := x.Shape[0], x.Shape[1]
	dims := x.Shape[2:]
	outSp := grid.Shape[1 : nd+1]
	y, err := newF32(ctx, n, append([]int{N, C}, outSp...))
	if err != nil {
		return nil, err
	}
	inSize, outSize := prod(dims), prod(outSp)
	if y.Len() == 0 || inSize == 0 {
		return []*tensor.Tensor{y}, nil
	}
	lo, hi := make([]float64, nd), make([]float64, nd)
	for d := range dims {
		lo[d], hi[d] = -0.5, float64(dims[d])-0.5
		if k.alignCorners {
			lo[d], hi[d] = 0, float64(dims[d]-1)
		}
	}
	str := tensor.Strides(dims)
	nt := map[string]int{"nearest": 1, "linear": 2, "cubic": 4}[k.mode]
	xd, gd, yd := x.F32(), grid.F32(), y.F32()
	ctx.Parallel(N*outSize, 256, func(p0, p1 int) {
		// Per dim: tap offsets (-1 when the tap reads zero padding) and
		// weights.
		offs := make([][]int, nd)
		ws := make([][]float64, nd)
		for d := range offs {
			offs[d] = make([]int, nt)
			ws[d] = make([]float64, nt)
		}
		ti := make([]int, nd)
		var cc [4]float64
		for p := p0; p < p1; p++ {
			img := p / outSize
			g := gd[p*nd : (p+1)*nd]
			for d := 0; d < nd; d++ {
				// The grid lists coordinates innermost dim first.
				gv := float64(g[nd-1-d])
				size := dims[d]
				var v float64
				if k.alignCorners {
					v = (gv + 1) / 2 * float64(size-1)
				} else {
					v = ((gv+1)*float64(size) - 1) / 2
				}
				if k.mode == "nearest" {
					if nd == 3 {
						v = math.Round(v) // PyTorch's 3-D sampler: std::round
					} else {
						v = math.RoundToEven(v) // 2-D: nearbyint
					}
				}
				// Out-of-range coordinates are pulled in before
				// interpolating, except for cubic, whose taps are padded
				// one by one (PyTorch and ONNX Runtime; the ONNX reference
				// pulls cubic coordinates in too, which only matters for
				// border/reflection, not covered by the node tests).
				if k.mode != "cubic" && (v < lo[d] || v > hi[d]) {
					switch k.padding {
					case "border":
						v = min(max(v, 0), float64(size-1))
					case "reflection":
						v = reflect(v, lo[d], hi[d])
					}
				}
				var base int
				switch k.mode {
				case "nearest":
					base = int(v) // v is integral: truncation is exact
					ws[d][0] = 1
				case "linear":
					f := math.Floor(v)
					base = int(f)
					ws[d][0], ws[d][1] = 1-(v-f), v-f
				case "cubic":
					f := math.Floor(v)
					base = int(f) - 1
					cubicCoeffs(v-f, &cc)
					copy(ws[d], cc[:])
				}
				for t := 0; t < nt; t++ {
					i := base + t
					switch k.padding {
					case "zeros":
						if i < 0 || i >= size {
							i = -1
						}
					case "border":
						i = min(max(i, 0), size-1)
					case "reflection":
						i = int(reflect(float64(i), lo[d], hi[d]))
						i = min(max(i, 0), size-1)
					}
					if i >= 0 {
						offs[d][t] = i * str[d]
					} else {
						offs[d][t] = -1
					}
				}
			}
			for c := 0; c < C; c++ {
				plane := xd[(img*C+c)*inSize : (img*C+c+1)*inSize]
				var s float64
				for d := range ti {
					ti[d] = 0
				}
				for {
					w, off := 1.0, 0
					for d := 0; d < nd; d++ {
						o := offs[d][ti[d]]
						if o < 0 {
							w = 0
							break
						}
						w *= ws[d][ti[d]]
						off += o
					}
					if w != 0 {
						s += w * float64(plane[off])
					}
					d := nd - 1
					for ; d >= 0; d-- {
						ti[d]++
						if ti[d] < nt {
							break
						}
						ti[d] = 0
					}
					if d < 0 {
						break
					}
				}
				yd[(img*C+c)*outSize+p%outSize] = float32(s)
			}
		}
	})
	return []*tensor.Tensor{y}, nil
}
