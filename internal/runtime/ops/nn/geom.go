package nn

import (
	"fmt"
	"sync"

	"github.com/qtool/qtool/internal/graph"
)

// windowAttrs are the attributes shared by Conv, ConvTranspose and the pools.
type windowAttrs struct {
	autoPad string
	kernel  []int // nil: taken from the weights (Conv)
	strides []int
	dil     []int
	pads    []int // begin..., end...
}

func readWindowAttrs(n *graph.Node) (windowAttrs, error) {
	var a windowAttrs
	var err error
	if a.autoPad, err = n.AttrString("auto_pad", "NOTSET"); err != nil {
		return a, err
	}
	switch a.autoPad {
	case "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID":
	default:
		return a, fmt.Errorf("%v: unknown auto_pad %q", n, a.autoPad)
	}
	if a.kernel, err = attrInts(n, "kernel_shape"); err != nil {
		return a, err
	}
	if a.strides, err = attrInts(n, "strides"); err != nil {
		return a, err
	}
	if a.dil, err = attrInts(n, "dilations"); err != nil {
		return a, err
	}
	if a.pads, err = attrInts(n, "pads"); err != nil {
		return a, err
	}
	for _, v := range a.kernel {
		if v < 1 {
			return a, fmt.Errorf("%v: kernel_shape %v must be positive", n, a.kernel)
		}
	}
	for _, v := range a.strides {
		if v < 1 {
			return a, fmt.Errorf("%v: strides %v must be positive", n, a.strides)
		}
	}
	for _, v := range a.dil {
		if v < 1 {
			return a, fmt.Errorf("%v: dilations %v must be positive", n, a.dil)
		}
	}
	for _, v := range a.pads {
		if v < 0 {
			return a, fmt.Errorf("%v: pads %v must not be negative", n, a.pads)
		}
	}
	return a, nil
}

// maxWindow bounds kernel sizes, pads and dilations per dim: far beyond any
// real model, small enough that no product of them overflows.
const maxWindow = 1 << 20

// geom is the resolved geometry of a sliding-window op over nd spatial dims.
type geom struct {
	nd                     int
	in, k, out             []int
	stride, dil            []int
	padBegin, padEnd       []int
	inSize, kSize, outSize int
}

// filled returns v when it has nd entries, nd copies of def when v is nil.
func filled(n *graph.Node, name string, v []int, nd, def int) ([]int, error) {
	if v == nil {
		out := make([]int, nd)
		for i := range out {
			out[i] = def
		}
		return out, nil
	}
	if len(v) != nd {
		return nil, fmt.Errorf("%v: %s has %d values, want %d", n, name, len(v), nd)
	}
	return append([]int(nil), v...), nil
}

// resolve computes output sizes and pads for input spatial dims in and kernel
// k. ceil selects the pools' ceil_mode rounding (never for convolutions).
func (a *windowAttrs) resolve(n *graph.Node, in, k []int, ceil bool) (*geom, error) {
	nd := len(in)
	g := &geom{nd: nd, in: in, k: k}
	var err error
	if len(k) != nd {
		return nil, fmt.Errorf("%v: kernel has %d dims, input has %d spatial dims", n, len(k), nd)
	}
	if g.stride, err = filled(n, "strides", a.strides, nd, 1); err != nil {
		return nil, err
	}
	if g.dil, err = filled(n, "dilations", a.dil, nd, 1); err != nil {
		return nil, err
	}
	g.padBegin = make([]int, nd)
	g.padEnd = make([]int, nd)
	g.out = make([]int, nd)
	if a.pads != nil && a.autoPad == "NOTSET" {
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
		// Pads beyond the kernel extent would only add windows made of
		// padding (and let a crafted model ask for absurd sizes).
		if max(g.padBegin[i], g.padEnd[i]) > maxWindow || k[i] > maxWindow || g.dil[i] > maxWindow {
			return nil, fmt.Errorf("%v: kernel %v, pads or dilations out of range", n, k)
		}
		ek := (k[i]-1)*g.dil[i] + 1 // extent of the dilated kernel
		s := g.stride[i]
		switch a.autoPad {
		case "SAME_UPPER", "SAME_LOWER":
			g.out[i] = (in[i] + s - 1) / s
			total := max(0, (g.out[i]-1)*s+ek-in[i])
			if a.autoPad == "SAME_UPPER" {
				g.padBegin[i] = total / 2
			} else {
				g.padBegin[i] = total - total/2
			}
			g.padEnd[i] = total - g.padBegin[i]
		case "VALID":
			if in[i] < ek {
				return nil, fmt.Errorf("%v: kernel extent %d larger than input %d", n, ek, in[i])
			}
			g.out[i] = (in[i]-ek)/s + 1
		default:
			span := in[i] + g.padBegin[i] + g.padEnd[i] - ek
			if span < 0 {
				return nil, fmt.Errorf("%v: kernel extent %d larger than padded input %d", n, ek, in[i]+g.padBegin[i]+g.padEnd[i])
			}
			if ceil {
				g.out[i] = (span+s-1)/s + 1
				// A last window that would start beyond the input and its
				// begin padding is dropped (PyTorch and ONNX agree).
				if (g.out[i]-1)*s >= in[i]+g.padBegin[i] {
					g.out[i]--
				}
			} else {
				g.out[i] = span/s + 1
			}
		}
	}
	g.inSize, g.kSize, g.outSize = prod(in), prod(k), prod(g.out)
	return g, nil
}

// im2col writes the column matrix of one group's input x (c channels of
// g.inSize each) for output positions [p0, p1): col is
// [c·kSize × (p1-p0)] row-major, rows ordered (channel, kernel offset).
func (g *geom) im2col(x []float32, c int, col []float32, p0, p1 int) {
	w := p1 - p0
	nd := g.nd
	kk := make([]int, nd)
	o := make([]int, nd)
	inStr := make([]int, nd)
	acc := 1
	for d := nd - 1; d >= 0; d-- {
		inStr[d] = acc
		acc *= g.in[d]
	}
	last := nd - 1
	outLast, inLast := g.out[last], g.in[last]
	sL, dL, pL := g.stride[last], g.dil[last], g.padBegin[last]
	row := 0
	for ch := 0; ch < c; ch++ {
		xc := x[ch*g.inSize : (ch+1)*g.inSize]
		for i := range kk {
			kk[i] = 0
		}
		for kidx := 0; kidx < g.kSize; kidx++ {
			dst := col[row*w : (row+1)*w]
			row++
			// Position of output p0 as a multi-index.
			p := p0
			for d := last; d >= 0; d-- {
				o[d] = p % g.out[d]
				p /= g.out[d]
			}
			j := 0
			for j < w {
				seg := min(outLast-o[last], w-j)
				base := 0
				valid := true
				for d := 0; d < last; d++ {
					id := o[d]*g.stride[d] - g.padBegin[d] + kk[d]*g.dil[d]
					if id < 0 || id >= g.in[d] {
						valid = false
						break
					}
					base += id * inStr[d]
				}
				out := dst[j : j+seg]
				if !valid {
					for t := range out {
						out[t] = 0
					}
				} else {
					off := kk[last]*dL - pL
					row := xc[base : base+inLast]
					o0 := o[last]
					if sL == 1 {
						// Contiguous source: zero the edges, copy the middle.
						lo := min(max(0, -(o0+off)), seg)
						hi := min(max(lo, inLast-(o0+off)), seg)
						for t := 0; t < lo; t++ {
							out[t] = 0
						}
						if hi > lo {
							copy(out[lo:hi], row[o0+off+lo:o0+off+hi])
						}
						for t := hi; t < seg; t++ {
							out[t] = 0
						}
					} else {
						// Valid t: 0 <= (o0+t)·sL + off < inLast.
						b0 := o0*sL + off
						lo := 0
						if b0 < 0 {
							lo = min((-b0+sL-1)/sL, seg)
						}
						hi := 0
						if inLast-b0 > 0 {
							hi = (inLast - b0 + sL - 1) / sL
						}
						hi = min(max(hi, lo), seg)
						for t := 0; t < lo; t++ {
							out[t] = 0
						}
						iw := b0 + lo*sL
						dst := out[lo:hi]
						for t := range dst {
							dst[t] = row[iw]
							iw += sL
						}
						for t := hi; t < seg; t++ {
							out[t] = 0
						}
					}
				}
				j += seg
				// Advance the multi-index by seg positions: the last dim
				// wraps to 0 and carries into the outer dims.
				o[last] += seg
				for d := last; d > 0 && o[d] >= g.out[d]; d-- {
					o[d] = 0
					o[d-1]++
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
}

// bufPool recycles scratch buffers (im2col tiles) between runs so that
// steady-state inference does not allocate and zero megabytes per conv.
var bufPool sync.Pool

func getBuf(n int) *[]float32 {
	if v, ok := bufPool.Get().(*[]float32); ok && cap(*v) >= n {
		*v = (*v)[:n]
		return v
	}
	b := make([]float32, n)
	return &b
}

func putBuf(b *[]float32) { bufPool.Put(b) }

// im2col2d is im2col for 2-D windows over output positions p0..p1: the
// valid output columns of each kernel column are computed once, so each
// (channel, kh, kw, output row) segment is a zero fill, a copy (stride 1) or
// a strided gather, and a zero fill.
func (g *geom) im2col2d(x []float32, c int, col []float32, p0, p1 int) {
	H, W := g.in[0], g.in[1]
	OW := g.out[1]
	KH, KW := g.k[0], g.k[1]
	sh, sw := g.stride[0], g.stride[1]
	dh, dw := g.dil[0], g.dil[1]
	ph, pw := g.padBegin[0], g.padBegin[1]
	w := p1 - p0
	var lo, hi [16]int
	los, his := lo[:0], hi[:0]
	if KW > len(lo) {
		los, his = make([]int, 0, KW), make([]int, 0, KW)
	}
	for kw := 0; kw < KW; kw++ {
		off := kw*dw - pw
		l := 0
		if off < 0 {
			l = min((-off+sw-1)/sw, OW)
		}
		h := 0
		if W-off > 0 {
			h = (W - off + sw - 1) / sw
		}
		los = append(los, l)
		his = append(his, min(max(h, l), OW))
	}
	oh0, oh1 := p0/OW, (p1+OW-1)/OW
	row := 0
	for ch := 0; ch < c; ch++ {
		xc := x[ch*H*W : (ch+1)*H*W]
		for kh := 0; kh < KH; kh++ {
			for kw := 0; kw < KW; kw++ {
				dst := col[row*w : (row+1)*w]
				row++
				off := kw*dw - pw
				for oh := oh0; oh < oh1; oh++ {
					// This row's columns a..b of the tile, at dst[base:].
					a, b := max(p0-oh*OW, 0), min(p1-oh*OW, OW)
					base := oh*OW + a - p0
					out := dst[base : base+b-a]
					ih := oh*sh - ph + kh*dh
					if ih < 0 || ih >= H {
						clear(out)
						continue
					}
					src := xc[ih*W : (ih+1)*W]
					l, h := min(max(los[kw], a), b), min(max(his[kw], a), b)
					// Segments are short (the output width, a pad or two
					// of zeros): plain loops beat memmove/memclr calls.
					for t := range out[:l-a] {
						out[t] = 0
					}
					if sw == 1 {
						seg, sv := out[l-a:h-a], src[l+off:h+off]
						if len(seg) >= 32 {
							copy(seg, sv)
						} else {
							for t := range seg {
								seg[t] = sv[t]
							}
						}
					} else {
						iw := l*sw + off
						seg := out[l-a : h-a]
						for t := range seg {
							seg[t] = src[iw]
							iw += sw
						}
					}
					for t := h - a; t < len(out); t++ {
						out[t] = 0
					}
				}
			}
		}
	}
}

// useSmallPlane switches im2colSmall (benchmarks compare both).
var useSmallPlane = true

// smallPlaneFloats bounds the zero-padded plane of im2colSmall.
const smallPlaneFloats = 4096

// smallPlane reports whether 2-D im2col over whole outputs should go through
// im2colSmall: output rows narrower than 32 make im2col2d's per-segment
// bounds work (a zero fill, a copy and a zero fill of a few floats each)
// cost as much as the copies; ResNet-18's 7x7 layers spent about a third of
// their GEMM time there.
func (g *geom) smallPlane() bool {
	if !useSmallPlane || g.nd != 2 || g.out[1] >= 32 {
		return false
	}
	hp, wp := g.window()
	return hp*wp <= smallPlaneFloats
}

// window is the extent of the input window read by all outputs, in rows
// and columns starting at (-padBegin[0], -padBegin[1]).
func (g *geom) window() (int, int) {
	return (g.out[0]-1)*g.stride[0] + (g.k[0]-1)*g.dil[0] + 1, (g.out[1]-1)*g.stride[1] + (g.k[1]-1)*g.dil[1] + 1
}

// im2colSmall writes the whole column matrix of c channels (as im2col2d
// with p0=0, p1=outSize): each channel is first copied into a zero-padded
// plane, from which every (kernel offset, output row) segment is a plain
// copy or strided gather with no bounds to work out.
func (g *geom) im2colSmall(x []float32, c int, col []float32) {
	H, W := g.in[0], g.in[1]
	OH, OW := g.out[0], g.out[1]
	KH, KW := g.k[0], g.k[1]
	sh, sw := g.stride[0], g.stride[1]
	dh, dw := g.dil[0], g.dil[1]
	ph, pw := g.padBegin[0], g.padBegin[1]
	Hp, Wp := g.window()
	P := OH * OW
	// Not from getBuf: its pool also serves megabyte im2col buffers, and a
	// small buffer handed to one of those callers is dropped and replaced
	// by a fresh, zeroed allocation.
	plane := make([]float32, Hp*Wp)
	// Input rows and columns inside the window.
	ih0, ih1 := max(0, -ph), min(H, Hp-ph)
	iw0, iw1 := max(0, -pw), min(W, Wp-pw)
	row := 0
	for ch := 0; ch < c; ch++ {
		xc := x[ch*H*W : (ch+1)*H*W]
		clear(plane)
		if ih0 < ih1 && iw0 < iw1 {
			copyRows(plane[(ih0+ph)*Wp+iw0+pw:], Wp, xc[ih0*W+iw0:], W, ih1-ih0, iw1-iw0)
		}
		for kh := 0; kh < KH; kh++ {
			for kw := 0; kw < KW; kw++ {
				dst := col[row*P : (row+1)*P]
				row++
				// One vector call per tap instead of a loop per output
				// row: ResNet-18's 14x14 and 7x7 layers spent ~10% of the
				// run in these rows of 7 and 14 floats.
				src := plane[(kh*dh)*Wp+kw*dw:]
				switch sw {
				case 1:
					copyRows(dst, OW, src, sh*Wp, OH, OW)
					continue
				case 2:
					gatherRows2(dst, OW, src, sh*Wp, OH, OW)
					continue
				}
				for oh := 0; oh < OH; oh++ {
					out := dst[oh*OW : (oh+1)*OW]
					src := plane[(oh*sh+kh*dh)*Wp+kw*dw:]
					for t := range out {
						out[t] = src[t*sw]
					}
				}
			}
		}
	}
}
