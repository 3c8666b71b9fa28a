package f32

import (
	"fmt"
	"math"
	"sync"
)

// MaxPool2D computes planes c0..c1 of a 2-D max pool of one NCHW image:
//
//	y[c][oh][ow] = max over kh < KH, kw < KW of x[c][oh·sH−PadT+kh·dH][ow·sW−PadL+kw·dW]
//
// with shape's fields as for DepthwiseConv2D (C is the number of planes;
// Mult must be 1). Positions outside the input are skipped (a window with
// none inside gives −Inf). max is Go's: NaN if any element is NaN, +0 above
// −0, so the result does not depend on the order the window is scanned in.
// Planes outside c0..c1 are not touched. Bad shapes or short slices panic.
//
// Each plane goes into a −Inf-bordered scratch split into StrideW column
// phases (as the depthwise conv does), so that the window maxima are whole
// rows of vector maxima: first over the window's rows for every column,
// then over its columns, each a contiguous run of a phase.
func MaxPool2D(shape *DWShape, x []float32, c0, c1 int, y []float32) {
	s := shape.norm()
	if s.C <= 0 || s.Mult != 1 || s.InH < 0 || s.InW < 0 || s.KH <= 0 || s.KW <= 0 ||
		s.StrideH < 0 || s.StrideW < 0 || s.DilH < 0 || s.DilW < 0 || s.PadT < 0 || s.PadL < 0 || s.OutH < 0 || s.OutW < 0 {
		panic(fmt.Sprintf("f32: bad max pool shape %+v", *shape))
	}
	if c0 < 0 || c1 > s.C || c0 > c1 {
		panic(fmt.Sprintf("f32: max pool planes %d..%d of %d", c0, c1, s.C))
	}
	inPlane, outPlane := s.InH*s.InW, s.OutH*s.OutW
	if len(x) < s.C*inPlane || len(y) < s.C*outPlane {
		panic(fmt.Sprintf("f32: max pool slices x=%d y=%d too short for %+v", len(x), len(y), s))
	}
	if c0 == c1 || outPlane == 0 {
		return
	}
	fRows := float64(s.OutH-1)*float64(s.StrideH) + float64(s.KH-1)*float64(s.DilH) + 1
	fCols := float64(s.OutW-1)*float64(s.StrideW) + float64(s.KW-1)*float64(s.DilW) + 1
	if fRows*fCols > 1<<22 && fRows*fCols > 4*float64(inPlane+outPlane) {
		maxPoolDirect(&s, x, c0, c1, y)
		return
	}
	rows := (s.OutH-1)*s.StrideH + (s.KH-1)*s.DilH + 1
	cols := (s.OutW-1)*s.StrideW + (s.KW-1)*s.DilW + 1
	sw := s.StrideW
	pw := (cols + sw - 1) / sw
	planeSize := rows * pw
	vertSize := s.OutH * pw
	kern := active()
	maxRows := kern.maxRows
	if maxRows == nil {
		maxRows = maxRowsGeneric
	}
	bp := getMaxPoolBuf(sw*planeSize + sw*vertSize)
	defer maxPoolPool.Put(bp)
	pad, vert := (*bp)[:sw*planeSize], (*bp)[sw*planeSize:]
	// The fills write only in-input positions, the same for every plane:
	// the −Inf around them is written once.
	negInf := float32(math.Inf(-1))
	for i := range pad {
		pad[i] = negInf
	}
	// Phases some window column reads.
	var used [64]bool
	var usedAll bool // more phases than used tracks: compute them all
	if sw > len(used) {
		usedAll = true
	}
	for kw := 0; kw < s.KW && !usedAll; kw++ {
		used[kw*s.DilW%sw] = true
	}
	rowStep := s.StrideH * pw
	pf := newPlaneFill(kern, &s, rows, cols, pw, planeSize)
	for c := c0; c < c1; c++ {
		pf.do(&s, x[c*inPlane:(c+1)*inPlane], pad, rows, cols, pw, planeSize)
		for q := 0; q < sw; q++ {
			if !usedAll && !used[q] {
				continue
			}
			src := pad[q*planeSize : (q+1)*planeSize]
			v := vert[q*vertSize : (q+1)*vertSize]
			if s.KH == 1 {
				checkedCopyRows(kern, v, pw, src, rowStep, s.OutH, pw)
				continue
			}
			checkedMaxRows(maxRows, v, pw, src, rowStep, src[s.DilH*pw:], rowStep, s.OutH, pw)
			for kh := 2; kh < s.KH; kh++ {
				checkedMaxRows(maxRows, v, pw, v, pw, src[kh*s.DilH*pw:], rowStep, s.OutH, pw)
			}
		}
		yc := y[c*outPlane : (c+1)*outPlane]
		tap := func(kw int) []float32 {
			col := kw * s.DilW
			return vert[col%sw*vertSize+col/sw:]
		}
		if s.KW == 1 {
			checkedCopyRows(kern, yc, s.OutW, tap(0), pw, s.OutH, s.OutW)
			continue
		}
		checkedMaxRows(maxRows, yc, s.OutW, tap(0), pw, tap(1), pw, s.OutH, s.OutW)
		for kw := 2; kw < s.KW; kw++ {
			checkedMaxRows(maxRows, yc, s.OutW, yc, s.OutW, tap(kw), pw, s.OutH, s.OutW)
		}
	}
}

// checkedMaxRows bounds-checks the slices before the unchecked assembly.
func checkedMaxRows(f func([]float32, int, []float32, int, []float32, int, int, int), dst []float32, ds int, a []float32, as int, b []float32, bs int, rows, n int) {
	if rows <= 0 || n <= 0 {
		return
	}
	if (rows-1)*ds+n > len(dst) || (rows-1)*as+n > len(a) || (rows-1)*bs+n > len(b) {
		panic("f32: maxRows out of range")
	}
	f(dst, ds, a, as, b, bs, rows, n)
}

func checkedCopyRows(k *kernel, dst []float32, ds int, src []float32, ss int, rows, n int) {
	if rows <= 0 || n <= 0 {
		return
	}
	if (rows-1)*ds+n > len(dst) || (rows-1)*ss+n > len(src) {
		panic("f32: copyRows out of range")
	}
	k.copyRows(dst, ds, src, ss, rows, n)
}

// maxRowsGeneric is the pure-Go twin of maxRowsAVX2:
// dst[r*dstStride+i] = max(a[r*aStride+i], b[r*bStride+i]) for r < rows,
// i < n. dst may be a or b itself (same stride), not an overlapping shift.
func maxRowsGeneric(dst []float32, dstStride int, a []float32, aStride int, b []float32, bStride int, rows, n int) {
	for r := 0; r < rows; r++ {
		d := dst[r*dstStride : r*dstStride+n]
		ar := a[r*aStride : r*aStride+n]
		br := b[r*bStride : r*bStride+n]
		for i := range d {
			d[i] = max(ar[i], br[i])
		}
	}
}

// maxPoolDirect is MaxPool2D without the scratch plane, for windows so
// spread out (huge dilations) that it would dwarf the data.
func maxPoolDirect(s *DWShape, x []float32, c0, c1 int, y []float32) {
	inPlane, outPlane := s.InH*s.InW, s.OutH*s.OutW
	for c := c0; c < c1; c++ {
		xc, yc := x[c*inPlane:(c+1)*inPlane], y[c*outPlane:(c+1)*outPlane]
		for oh := 0; oh < s.OutH; oh++ {
			for ow := 0; ow < s.OutW; ow++ {
				best := float32(math.Inf(-1))
				for kh := 0; kh < s.KH; kh++ {
					ih := oh*s.StrideH - s.PadT + kh*s.DilH
					if ih < 0 || ih >= s.InH {
						continue
					}
					for kw := 0; kw < s.KW; kw++ {
						if iw := ow*s.StrideW - s.PadL + kw*s.DilW; iw >= 0 && iw < s.InW {
							best = max(best, xc[ih*s.InW+iw])
						}
					}
				}
				yc[oh*s.OutW+ow] = best
			}
		}
	}
}

var maxPoolPool sync.Pool

func getMaxPoolBuf(n int) *[]float32 {
	if b, ok := maxPoolPool.Get().(*[]float32); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]float32, n)
	return &b
}
