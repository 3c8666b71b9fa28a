package q8

import (
	"fmt"
	"unsafe"
)

// DWConv3x3 is DWConv for the common 3×3 layer (padding 1 on every side,
// stride 1 or 2, no dilation) over an NHWC uint8 image x of h×w pixels and
// c channels, read in place: output rows y0..y1 of the oh×ow result
// (oh = (h−1)/stride+1, likewise ow), pixel (y, i) at out row y·ow+i.
//
// It reports false, doing nothing, where its kernel does not apply (a
// path without one: generic; weights that are not 3×3, int32
// output; on avx512vnni weights that do not fit int8 after the zero point,
// on avx2 and avxvnni channels that are not a multiple of 8); callers then
// use DWConv.
// The kernel interleaves each output row's three input rows so that one
// VPDPBUSD sums a kernel column (dw3Build), which does a third of DWConv's
// dot products and needs neither the bordered image copy nor an offset
// table; the avx2 kernel does the same with words and VPMADDWD
// (dw3x3AVX2). The arm64 paths take dw3Arm64 (dw3_arm64.go; on weights
// whose W − W0 fit int16).
func DWConv3x3(x []uint8, h, w, c, stride int, xZero int32, d *DWWeights, y0, y1 int, out Output) bool {
	// The avxvnni path (AVX-VNNI without AVX-512) takes the avx2 kernel.
	avx2 := (active == isaAVX2 || active == isaAVXVNNI) && dw3RowA[0] != nil && d.w3a != nil
	if !avx2 && (dw3RowK[0] == nil || active != isaAVX512VNNI || d.w3 == nil) || out.Q == nil || (stride != 1 && stride != 2) {
		return dw3Arm64 != nil && dw3Arm64(x, h, w, c, stride, xZero, d, y0, y1, out)
	}
	// Chunks of 64 channels in zmm, or of 32 in ymm where that pads
	// enough less: a ymm step costs about half a zmm one on Zen 4, plus
	// its share of per-chunk setup (measured: 32 and 96 channels gain,
	// 144 loses).
	cw, w3, build, kerns, kernsN := 64, d.w3, dw3BuildK, dw3RowK, dw3RowKN
	if 2*((c+31)/32) <= 3*((c+63)/64) {
		cw, w3, build, kerns, kernsN = 32, d.w3y, dw3BuildKY, dw3RowKY, dw3RowKYN
	}
	ow, st, ok := dw3Check(x, h, w, c, stride, d, y0, y1, out)
	if !ok {
		return true
	}
	q := out.Q
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	if avx2 {
		dw3x3AVX2(sc, x, h, w, c, stride, xZero, d, y0, y1, q, &st)
		return true
	}
	nch := (c + cw - 1) / cw
	// Column terms (−xZero·Σw + bias, what Gemm's columns gives) and
	// scales, straight into the column image's channel order: dword
	// (lane l, j) of vector q is channel 16l+4q+j of the chunk. On the small
	// late layers this per-call setup weighed as much as the kernel.
	sc.dwCT = grow32(sc.dwCT, nch*cw)
	if cap(sc.dwSc) < nch*cw {
		sc.dwSc = make([]float32, nch*cw)
	}
	sc.dwSc = sc.dwSc[:nch*cw]
	i := 0
	for k := 0; k < nch*cw; k += cw {
		for v := 0; v < 4; v++ {
			for l := 0; l < cw; l += 16 {
				for j := 0; j < 4; j++ {
					ch := k + l + 4*v + j
					sc.dwCT[i], sc.dwSc[i] = 0, 0
					if ch < c {
						sc.dwCT[i], sc.dwSc[i] = dw3Term(ch, xZero, d, q)
					}
					i++
				}
			}
		}
	}
	// The column image of one output row: w+2 columns (the outer two are
	// the left and right padding) of nch chunks of 4·cw bytes; and a row
	// of zero points for the top and bottom padding.
	cs := nch * 4 * cw
	col := growU8(&sc.dw3Col, (w+2)*cs)
	zrow := growU8(&sc.dw3Zero, w*c+64)
	fillU8(zrow, uint8(xZero))
	fillU8(col[:cs], uint8(xZero))
	fillU8(col[(w+1)*cs:], uint8(xZero))
	mask := ^uint64(0)
	if r := c % cw; r != 0 {
		mask = uint64(1)<<r - 1
	}
	row := func(r int) *uint8 {
		if r < 0 || r >= h {
			return &zrow[0]
		}
		return &x[r*w*c]
	}
	kern := kerns[b2i(q.OutU8 == nil)]
	if noClamp(q, q.Scale) {
		kern = kernsN[b2i(q.OutU8 == nil)]
	}
	// One e for the whole call: it escapes (the kernels are func values),
	// and one per kernel call was most of a MobileNetV2 run's garbage.
	var e dw8Epi
	for y := y0; y < y1; y++ {
		r := y * stride
		build(&col[cs], row(r-1), row(r), row(r+1), w, c, nch, mask)
		for k := 0; k < nch; k++ {
			e = dw8Epi{colTerm: &sc.dwCT[cw*k], scale: &sc.dwSc[cw*k], ldc: q.Ldc, zp: st.zp, fmin: st.fmin, fmax: st.fmax, mask: ^uint64(0)}
			if n := c - cw*k; n < cw {
				e.mask = uint64(1)<<n - 1
			}
			at := (y-y0)*ow*q.Ldc + cw*k
			if q.OutU8 != nil {
				e.dst = unsafe.Pointer(&q.OutU8[at])
			} else {
				e.dst = unsafe.Pointer(&q.OutS8[at])
			}
			kern(ow, &col[4*cw*k], stride*cs, cs, &w3[4*cw*k], cs, &e)
		}
	}
	return true
}

// dw3Check is DWConv3x3's argument checks, shared by its amd64 and arm64
// paths: it panics on a malformed call and returns the output width and
// the output stage, ok false where there is nothing to compute (no rows
// or no channels).
func dw3Check(x []uint8, h, w, c, stride int, d *DWWeights, y0, y1 int, out Output) (ow int, st stage, ok bool) {
	if h <= 0 || w <= 0 || c != d.C || len(x) < h*w*c {
		panic(fmt.Sprintf("q8.DWConv3x3: %d bytes for %dx%dx%d (weights of %d channels)", len(x), h, w, c, d.C))
	}
	oh := (h-1)/stride + 1
	ow = (w-1)/stride + 1
	if y0 < 0 || y1 > oh || y0 > y1 {
		panic(fmt.Sprintf("q8.DWConv3x3: rows %d..%d of %d", y0, y1, oh))
	}
	pb := &PackedB{N: c, ColSum: d.sum}
	st, ok = checkCall("DWConv3x3", (y1-y0)*ow, pb, []int32{0}, 0, c, out)
	return ow, st, ok && c != 0
}

// dw3Terms sets sc.dwCT and sc.dwSc to each channel's dw3Term in
// channel order, n of them, zero past c.
func dw3Terms(sc *scratch, c, n int, xZero int32, d *DWWeights, q *Requant) {
	sc.dwCT = grow32(sc.dwCT, n)
	if cap(sc.dwSc) < n {
		sc.dwSc = make([]float32, n)
	}
	sc.dwSc = sc.dwSc[:n]
	clear(sc.dwCT[c:])
	clear(sc.dwSc[c:])
	for ch := 0; ch < c; ch++ {
		sc.dwCT[ch], sc.dwSc[ch] = dw3Term(ch, xZero, d, q)
	}
}

// dw3Term is channel ch's column term (−xZero·Σw + bias, what Gemm's
// columns gives) and scale.
func dw3Term(ch int, xZero int32, d *DWWeights, q *Requant) (int32, float32) {
	ct := -xZero * d.sum[ch]
	if q.Bias != nil {
		ct += q.Bias[ch]
	}
	if len(q.Scale) > 1 {
		return ct, q.Scale[ch]
	}
	return ct, q.Scale[0]
}

// noClamp reports whether a requantization needs no clamp of its own
// before the narrowing to bytes, whose saturation clamps: the bounds are the
// output type's whole range, and every scale is at most 0.5, so that
// float32(an int32)·scale stays far inside VCVTPS2DQ's range (|x| < 2^31)
// and the conversion never gives its overflow value. Rounding then
// clamping to integer bounds is clamping then rounding.
func noClamp(q *Requant, scale []float32) bool {
	lo, hi := q.bounds()
	if q.OutU8 != nil && (lo != 0 || hi != 255) || q.OutU8 == nil && (lo != -128 || hi != 127) {
		return false
	}
	for _, s := range scale {
		if !(s <= 0.5 && s >= -0.5) {
			return false
		}
	}
	return true
}

// packW3 lays 3×3 weights (w[t][ch] = W − W0, t = 3·ky+kx) out for dw3Row
// with chunks of cw (64 or 32) channels: per kernel column kx, per chunk,
// four vectors of cw bytes; dword (lane l, j) of vector q is channel
// 16l+4q+j of the chunk with its three rows' weights in bytes 0..2.
func packW3(wt []int32, c, cw int) []int8 {
	nch := (c + cw - 1) / cw
	w3 := make([]int8, 3*nch*4*cw)
	for kx := 0; kx < 3; kx++ {
		for ch := 0; ch < c; ch++ {
			k, l, v, j := ch/cw, ch%cw/16, ch%16/4, ch%4
			at := (kx*nch+k)*4*cw + cw*v + 16*l + 4*j
			for ky := 0; ky < 3; ky++ {
				w3[at+ky] = int8(wt[(3*ky+kx)*c+ch])
			}
		}
	}
	return w3
}

// fillU8 sets every byte of b to v, doubling copies (the byte loop was a
// visible share of the small layers).
func fillU8(b []uint8, v uint8) {
	if len(b) == 0 {
		return
	}
	b[0] = v
	for n := 1; n < len(b); n *= 2 {
		copy(b[n:], b[:n])
	}
}

func growU8(b *[]uint8, n int) []uint8 {
	if cap(*b) < n {
		*b = make([]uint8, n)
	}
	*b = (*b)[:n]
	return *b
}

// dw3x3AVX2 is DWConv3x3 on the avx2 path (c a multiple of 8): the column
// image in words (dw3BuildA), 64 bytes per column and 8 channels, column
// terms and scales in channel order.
func dw3x3AVX2(sc *scratch, x []uint8, h, w, c, stride int, xZero int32, d *DWWeights, y0, y1 int, q *Requant, st *stage) {
	ow := (w-1)/stride + 1
	nch := c / 8
	dw3Terms(sc, c, c, xZero, d, q)
	// w+2 columns, the outer two the padding: a zero point in every word
	// of vector A and in the low word of vector B's dwords.
	cs := nch * 64
	col := growU8(&sc.dw3Col, (w+2)*cs)
	zrow := growU8(&sc.dw3Zero, w*c)
	fillU8(zrow, uint8(xZero))
	for i := 0; i < 64; i += 4 {
		col[i], col[i+1], col[i+2], col[i+3] = uint8(xZero), 0, uint8(xZero), 0
		if i >= 32 {
			col[i+2] = 0
		}
	}
	for n := 64; n < cs; n *= 2 {
		copy(col[n:cs], col[:n])
	}
	copy(col[(w+1)*cs:], col[:cs])
	row := func(r int) *uint8 {
		if r < 0 || r >= h {
			return &zrow[0]
		}
		return &x[r*w*c]
	}
	kern := dw3RowA[b2i(q.OutU8 == nil)]
	if noClamp(q, q.Scale) {
		kern = dw3RowAN[b2i(q.OutU8 == nil)]
	}
	e := dw8Epi{colTerm: &sc.dwCT[0], scale: &sc.dwSc[0], ldc: q.Ldc, zp: st.zp, fmin: st.fmin, fmax: st.fmax}
	for y := y0; y < y1; y++ {
		r := y * stride
		dw3BuildAK(&col[cs], row(r-1), row(r), row(r+1), w*nch)
		at := (y - y0) * ow * q.Ldc
		if q.OutU8 != nil {
			e.dst = unsafe.Pointer(&q.OutU8[at])
		} else {
			e.dst = unsafe.Pointer(&q.OutS8[at])
		}
		kern(ow, nch, &col[0], stride*cs, cs, &d.w3a[0], &e)
	}
}

// packW3A lays 3×3 weights (w[t][ch] = W − W0, t = 3·ky+kx; c a multiple
// of 8) out for dw3RowA: per kernel column kx, per 8 channels, vector A
// with dword j = (ky 0, ky 1) of channel j as int16 and vector B with dword
// j = ky 2 in its low word (the image's high word there is zero).
func packW3A(wt []int32, c int) []int16 {
	nch := c / 8
	w3 := make([]int16, 3*nch*32)
	for kx := 0; kx < 3; kx++ {
		for ch := 0; ch < c; ch++ {
			at := (kx*nch+ch/8)*32 + 2*(ch%8)
			w3[at] = int16(wt[kx*c+ch])
			w3[at+1] = int16(wt[(3+kx)*c+ch])
			w3[at+16] = int16(wt[(6+kx)*c+ch])
		}
	}
	return w3
}
