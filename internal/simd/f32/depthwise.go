package f32

import (
	"fmt"
	"math"
	"sync"
	"unsafe"
)

// DWShape describes a depthwise 2-D convolution of one NCHW image: every
// output channel c is the correlation of input channel c/Mult with its own
// KH×KW filter (ONNX Conv with group == input channels).
//
// PadT and PadL are the top and left pads; the bottom and right pads are
// whatever OutH and OutW imply (positions past the input read as zero), so
// auto_pad and asymmetric pads need no extra fields.
type DWShape struct {
	C                int // output channels
	Mult             int // output channels per input channel; 0 means 1
	InH, InW         int
	KH, KW           int
	StrideH, StrideW int // 0 means 1
	DilH, DilW       int // 0 means 1
	PadT, PadL       int
	OutH, OutW       int
}

func (s *DWShape) norm() DWShape {
	t := *s
	for _, p := range []*int{&t.Mult, &t.StrideH, &t.StrideW, &t.DilH, &t.DilW} {
		if *p == 0 {
			*p = 1
		}
	}
	return t
}

// DepthwiseConv2D computes output channels c0..c1 of one image:
//
//	y[c][oh][ow] = act(Σ_{kh,kw} x[c/Mult][oh·sH−PadT+kh·dH][ow·sW−PadL+kw·dW]·w[c][kh][kw]
//	                   + (y[c][oh][ow] if ep.Accumulate) + ep.RowBias[c])
//
// x is [C/Mult][InH][InW], w is [C][KH][KW], y is [C][OutH][OutW], all
// dense; taps outside the input read zero. ep.RowBias is the per-channel
// bias (nil for none); ep.ColBias must be nil. Channels outside c0..c1 are not
// touched, so goroutines may split channels, with bit-identical results
// whatever the split. A batch is a loop over images with offset slices.
//
// Each channel's input window is first copied into a zero-padded scratch
// plane (split into StrideW column phases, so strided taps become contiguous
// loads); the kernel then walks output rows with every tap a vector load and
// FMA. Bad shapes or short slices panic.
func DepthwiseConv2D(shape *DWShape, x, w []float32, c0, c1 int, y []float32, ep Epilogue) {
	s := shape.norm()
	if s.C <= 0 || s.Mult < 0 || s.C%s.Mult != 0 || s.InH < 0 || s.InW < 0 || s.KH <= 0 || s.KW <= 0 ||
		s.StrideH < 0 || s.StrideW < 0 || s.DilH < 0 || s.DilW < 0 || s.PadT < 0 || s.PadL < 0 || s.OutH < 0 || s.OutW < 0 {
		panic(fmt.Sprintf("f32: bad depthwise shape %+v", *shape))
	}
	if c0 < 0 || c1 > s.C || c0 > c1 {
		panic(fmt.Sprintf("f32: depthwise channels %d..%d of %d", c0, c1, s.C))
	}
	if ep.ColBias != nil {
		panic("f32: depthwise conv has no column bias")
	}
	ep.check(c0, c1, 0, 0)
	inPlane, outPlane, taps := s.InH*s.InW, s.OutH*s.OutW, s.KH*s.KW
	if len(x) < s.C/s.Mult*inPlane || len(w) < s.C*taps || len(y) < s.C*outPlane {
		panic(fmt.Sprintf("f32: depthwise slices x=%d w=%d y=%d too short for %+v", len(x), len(w), len(y), s))
	}
	if c0 == c1 || outPlane == 0 {
		return
	}

	// The plane's size in float64: absurd dilations must not overflow int.
	fRows := float64(s.OutH-1)*float64(s.StrideH) + float64(s.KH-1)*float64(s.DilH) + 1
	fCols := float64(s.OutW-1)*float64(s.StrideW) + float64(s.KW-1)*float64(s.DilW) + 1
	if slot := fRows * fCols; slot > 1<<22 && slot > 4*float64(inPlane+outPlane) {
		// Dilations or pads so large that the padded plane would dwarf the
		// data: compute from the input directly rather than allocate it.
		dwDirect(&s, x, w, c0, c1, y, &ep)
		return
	}
	// Scratch geometry: rows ih = -PadT .. -PadT+rows-1 of the input, and
	// columns iw = -PadL .. -PadL+cols-1 dealt into StrideW phase planes,
	// phase q holding columns q, q+sW, ... of that window.
	rows := (s.OutH-1)*s.StrideH + (s.KH-1)*s.DilH + 1
	cols := (s.OutW-1)*s.StrideW + (s.KW-1)*s.DilW + 1
	pw := (cols + s.StrideW - 1) / s.StrideW // phase plane width
	planeSize := rows * pw
	kern := active()
	n, lanes := s.OutW, kern.dwLanes
	// Narrow maps go four channels at a time, one output row of each per
	// step (four FMA chains); the rest channel by channel, rows grouped.
	slots := 1
	if n <= lanes && c1-c0 >= 4 {
		slots = 4
	}
	slot := s.StrideW * planeSize
	ws := getDWScratch(slots*slot, taps)
	defer dwPool.Put(ws)
	pad, offs := ws.pad, ws.offs
	clear(pad)
	for i := 0; i < s.KH; i++ {
		for j := 0; j < s.KW; j++ {
			col := j * s.DilW
			offs[i*s.KW+j] = 4 * (i*s.DilH*pw + col%s.StrideW*planeSize + col/s.StrideW)
		}
	}
	te := &ws.ep
	*te = tileEp{}
	if ep.Accumulate {
		te.flags |= epLoad
	}
	if ep.RowBias != nil {
		te.flags |= epRowBias
	}
	switch ep.Act {
	case ActRelu:
		te.flags |= epClamp
		te.lo, te.hi = 0, float32(math.Inf(1))
	case ActClip:
		te.flags |= epClamp
		te.lo, te.hi = ep.Min, ep.Max
	case ActLeakyRelu:
		te.flags |= epLeaky
		te.alpha = ep.Alpha
	}
	inRow := s.StrideH * pw
	xPlane := func(c int) []float32 { return x[c/s.Mult*inPlane : (c/s.Mult+1)*inPlane] }
	pf := newPlaneFill(kern, &s, rows, cols, pw, planeSize)
	c := c0
	if slots == 4 {
		te.memberBias = 4
		for ; c+4 <= c1; c += 4 {
			for r := 0; r < 4; r++ {
				pf.do(&s, xPlane(c+r), pad[r*slot:], rows, cols, pw, planeSize)
				for t := 0; t < taps; t++ {
					ws.w4[t*4+r] = w[(c+r)*taps+t]
				}
			}
			if ep.RowBias != nil {
				te.rowBias = unsafe.Pointer(&ep.RowBias[c])
			}
			kern.dw[2](s.OutH, n, y[c*outPlane:], outPlane, n, pad, slot, inRow, offs, ws.w4, te)
		}
	}
	te.memberBias = 0
	// Wide 3x3 stride-1 maps (MobileNetV2's 28x28 to 112x112) through dw3:
	// loads, not FMAs, bound the row kernels there.
	dw3 := kern.dw3 != nil && s.KH == 3 && s.KW == 3 && s.StrideH == 1 && s.StrideW == 1 &&
		s.DilH == 1 && s.DilW == 1 && n > lanes && s.OutH >= 4
	dw3s2 := kern.dw3s2 != nil && s.KH == 3 && s.KW == 3 && s.StrideH == 2 && s.StrideW == 2 &&
		s.DilH == 1 && s.DilW == 1 && n > lanes && s.OutH >= 4
	for ; c < c1; c++ {
		pf.do(&s, xPlane(c), pad, rows, cols, pw, planeSize)
		if ep.RowBias != nil {
			te.rowBias = unsafe.Pointer(&ep.RowBias[c])
		}
		wc := w[c*taps : (c+1)*taps]
		yc := y[c*outPlane : (c+1)*outPlane]
		// Members are rows of this channel: weights repeated per member.
		oh := 0
		if dw3 {
			g := s.OutH / 4 * 4
			if (g+1)*inRow+n+2 > len(pad) || g*n > len(yc) {
				panic("f32: dw3 out of range")
			}
			kern.dw3(g, n, yc, n, pad, inRow, wc, te)
			oh = g
		}
		if dw3s2 {
			// Rows 0..2g of both phases, n+1 columns of phase 0.
			g := s.OutH / 4 * 4
			if 2*g >= rows || planeSize+2*g*pw+n > len(pad) || g*n > len(yc) {
				panic("f32: dw3s2 out of range")
			}
			kern.dw3s2(g, n, yc, n, pad, pw, planeSize, wc, te)
			oh = g
		}
		if n <= 2*lanes && s.OutH >= 2 && !dw3 && !dw3s2 {
			for t, v := range wc {
				ws.w2[2*t], ws.w2[2*t+1] = v, v
			}
			if n <= lanes && s.OutH >= 4 {
				for t, v := range wc {
					ws.w4[4*t], ws.w4[4*t+1], ws.w4[4*t+2], ws.w4[4*t+3] = v, v, v, v
				}
				g := s.OutH / 4
				kern.dw[2](g, n, yc, n, 4*n, pad, inRow, 4*inRow, offs, ws.w4, te)
				oh = 4 * g
			}
			if g := (s.OutH - oh) / 2; g > 0 {
				kern.dw[1](g, n, yc[oh*n:], n, 2*n, pad[oh*inRow:], inRow, 2*inRow, offs, ws.w2, te)
				oh += 2 * g
			}
		}
		if oh < s.OutH {
			kern.dw[0](s.OutH-oh, n, yc[oh*n:], n, n, pad[oh*inRow:], inRow, inRow, offs, wc, te)
		}
	}
}

// planeFill is fillPadded worked out once per call for column strides 1
// and 2: where each phase's in-input block goes, which is the same for every
// channel. On 7x7 and 14x14 maps working it out per channel (ceilDiv and
// all) took about a tenth of the depthwise conv.
type planeFill struct {
	fill  func(dst []float32, dstStride int, src []float32, srcStride int, rows, n int)
	n     int // phases with a block
	ph    [2]struct{ dst, src, rows, cols int }
	slow  bool // column stride > 2: fillPadded itself
	inRow int
	pw    int
}

func newPlaneFill(k *kernel, s *DWShape, rows, cols, pw, planeSize int) planeFill {
	f := planeFill{inRow: s.InW, pw: pw}
	sw := s.StrideW
	if sw > 2 {
		f.slow = true
		return f
	}
	f.fill = k.copyRows
	if sw == 2 {
		f.fill = k.gather2
	}
	rLo, rHi := max(0, s.PadT), min(rows, s.InH+s.PadT)
	for q := 0; q < sw; q++ {
		kLo := max(0, ceilDiv(s.PadL-q, sw))
		kHi := min(pw, ceilDiv(s.InW+s.PadL-q, sw), ceilDiv(cols-q, sw))
		if kHi <= kLo || rHi <= rLo {
			continue
		}
		ph := &f.ph[f.n]
		ph.dst, ph.src = q*planeSize+rLo*pw+kLo, (rLo-s.PadT)*s.InW+q+sw*kLo-s.PadL
		ph.rows, ph.cols = rHi-rLo, kHi-kLo
		f.n++
	}
	return f
}

// do fills the phase planes at pad from the channel xc.
func (f *planeFill) do(s *DWShape, xc, pad []float32, rows, cols, pw, planeSize int) {
	if f.slow {
		fillPadded(s, xc, pad, rows, cols, pw, planeSize)
		return
	}
	for i := 0; i < f.n; i++ {
		ph := &f.ph[i]
		f.fill(pad[ph.dst:], f.pw, xc[ph.src:], f.inRow, ph.rows, ph.cols)
	}
}

// fillPadded copies the input window of one channel into the phase planes.
// Only in-input positions are written: they are the same for every channel,
// so the zeros around them, written once per call, stay valid.
func fillPadded(s *DWShape, xc, pad []float32, rows, cols, pw, planeSize int) {
	sw := s.StrideW
	rLo, rHi := max(0, s.PadT), min(rows, s.InH+s.PadT)
	for q := 0; q < sw; q++ {
		// Window column q+k·sw is input column q+k·sw−PadL: k in kLo..kHi
		// lands inside the input (and inside the window).
		kLo := max(0, ceilDiv(s.PadL-q, sw))
		kHi := min(pw, ceilDiv(s.InW+s.PadL-q, sw), ceilDiv(cols-q, sw))
		if kHi <= kLo || rHi <= rLo {
			continue
		}
		if sw <= 2 {
			fill := active().copyRows
			if sw == 2 {
				fill = active().gather2
			}
			fill(pad[q*planeSize+rLo*pw+kLo:], pw, xc[(rLo-s.PadT)*s.InW+q+sw*kLo-s.PadL:], s.InW, rHi-rLo, kHi-kLo)
			continue
		}
		for r := rLo; r < rHi; r++ {
			dst := pad[q*planeSize+r*pw+kLo : q*planeSize+r*pw+kHi]
			src := xc[(r-s.PadT)*s.InW:]
			iw := q + kLo*sw - s.PadL
			for k := range dst {
				dst[k] = src[iw]
				iw += sw
			}
		}
	}
}

func copyRowsGeneric(dst []float32, dstStride int, src []float32, srcStride int, rows, n int) {
	for r := 0; r < rows; r++ {
		copy(dst[r*dstStride:r*dstStride+n], src[r*srcStride:r*srcStride+n])
	}
}

func gather2Generic(dst []float32, dstStride int, src []float32, srcStride int, rows, n int) {
	for r := 0; r < rows; r++ {
		d := dst[r*dstStride : r*dstStride+n]
		s := src[r*srcStride : r*srcStride+2*n-1]
		for i := range d {
			d[i] = s[2*i]
		}
	}
}

// ceilDiv is ⌈a/b⌉ for b > 0 and any sign of a.
func ceilDiv(a, b int) int {
	if a <= 0 {
		return -(-a / b)
	}
	return (a + b - 1) / b
}

type dwScratch struct {
	pad    []float32
	offs   []int
	w2, w4 []float32 // weights interleaved per member: [tap][2], [tap][4]
	ep     tileEp
}

var dwPool sync.Pool

func getDWScratch(padLen, taps int) *dwScratch {
	ws, _ := dwPool.Get().(*dwScratch)
	if ws == nil {
		ws = &dwScratch{}
	}
	if cap(ws.pad) < padLen {
		ws.pad = make([]float32, padLen)
	}
	if cap(ws.offs) < taps {
		ws.offs = make([]int, taps)
		ws.w2 = make([]float32, 2*taps)
		ws.w4 = make([]float32, 4*taps)
	}
	ws.pad, ws.offs, ws.w2, ws.w4 = ws.pad[:padLen], ws.offs[:taps], ws.w2[:2*taps], ws.w4[:4*taps]
	return ws
}

// dwDirect is DepthwiseConv2D without the padded plane, for shapes where
// that plane would be huge: taps outside the input are skipped.
func dwDirect(s *DWShape, x, w []float32, c0, c1 int, y []float32, ep *Epilogue) {
	inPlane, outPlane, taps := s.InH*s.InW, s.OutH*s.OutW, s.KH*s.KW
	for c := c0; c < c1; c++ {
		xc, wc := x[c/s.Mult*inPlane:(c/s.Mult+1)*inPlane], w[c*taps:(c+1)*taps]
		yc := y[c*outPlane : (c+1)*outPlane]
		for oh := 0; oh < s.OutH; oh++ {
			for ow := 0; ow < s.OutW; ow++ {
				var acc float32
				for kh := 0; kh < s.KH; kh++ {
					ih := oh*s.StrideH - s.PadT + kh*s.DilH
					if ih < 0 || ih >= s.InH {
						continue
					}
					for kw := 0; kw < s.KW; kw++ {
						if iw := ow*s.StrideW - s.PadL + kw*s.DilW; iw >= 0 && iw < s.InW {
							acc += xc[ih*s.InW+iw] * wc[kh*s.KW+kw]
						}
					}
				}
				yc[oh*s.OutW+ow] = epValue(ep, acc, yc[oh*s.OutW+ow], c)
			}
		}
	}
}

// epValue applies ep to one finished sum of row (channel) i.
func epValue(ep *Epilogue, v, old float32, i int) float32 {
	if ep.Accumulate {
		v += old
	}
	if ep.RowBias != nil {
		v += ep.RowBias[i]
	}
	switch ep.Act {
	case ActRelu:
		if v < 0 {
			v = 0
		}
	case ActClip:
		if v < ep.Min {
			v = ep.Min
		}
		if v > ep.Max {
			v = ep.Max
		}
	case ActLeakyRelu:
		if v < 0 {
			v *= ep.Alpha
		}
	}
	return v
}

// dwFunc is a depthwise kernel for R members per group (R fixed by the
// variant):
//
//	out[g*outGroup + r*outStride + i] =
//	    stages(Σ_t w[t*R+r]·in[g*inGroup + r*inStride + i + offs[t]/4])
//
// for g < groups, r < R, i < n, taps summed in order; member r's bias is at
// rowBias + r·memberBias bytes.
type dwFunc func(groups, n int, out []float32, outStride, outGroup int, in []float32, inStride, inGroup int, offs []int, w []float32, ep *tileEp)

// dwGeneric is the pure-Go twin of the depthwise kernels. It sweeps each tap
// over a chunk of the row (an axpy the compiler keeps tight), which adds the
// taps to every element in the same order as the assembly's per-element
// chains.
func dwGeneric(R int) dwFunc {
	return func(groups, n int, out []float32, outStride, outGroup int, in []float32, inStride, inGroup int, offs []int, w []float32, ep *tileEp) {
		var acc [64]float32
		for g := 0; g < groups; g++ {
			for r := 0; r < R; r++ {
				o := out[g*outGroup+r*outStride : g*outGroup+r*outStride+n]
				src := in[g*inGroup+r*inStride:]
				var bias float32
				if ep.flags&epRowBias != 0 {
					bias = *(*float32)(unsafe.Add(ep.rowBias, r*ep.memberBias))
				}
				for i0 := 0; i0 < n; i0 += len(acc) {
					a := acc[:min(len(acc), n-i0)]
					clear(a)
					for t, off := range offs {
						wt := w[t*R+r]
						s := src[off/4+i0:]
						s = s[:len(a)]
						for i := range a {
							a[i] += wt * s[i]
						}
					}
					// The stages as whole-chunk passes, in the kernels' order.
					oc := o[i0 : i0+len(a)]
					if ep.flags&epLoad != 0 {
						for i := range a {
							a[i] += oc[i]
						}
					}
					if ep.flags&epRowBias != 0 {
						for i := range a {
							a[i] += bias
						}
					}
					if ep.flags&epClamp != 0 {
						lo, hi := ep.lo, ep.hi
						for i, v := range a {
							if v < lo {
								v = lo
							}
							if v > hi {
								v = hi
							}
							a[i] = v
						}
					}
					if ep.flags&epLeaky != 0 {
						for i, v := range a {
							if v < 0 {
								a[i] = v * ep.alpha
							}
						}
					}
					copy(oc, a)
				}
			}
		}
	}
}
