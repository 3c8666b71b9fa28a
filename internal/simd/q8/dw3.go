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
// It reports false, doing nothing, where its kernel does not apply (no
// AVX-512 VNNI path, weights that are not 3×3 or do not fit int8 after the
// zero point, int32 output); callers then use DWConv. The kernel
// interleaves each output row's three input rows so that one VPDPBUSD sums
// a kernel column (dw3Build), which does a third of DWConv's dot products
// and needs neither the bordered image copy nor an offset table.
func DWConv3x3(x []uint8, h, w, c, stride int, xZero int32, d *DWWeights, y0, y1 int, out Output) bool {
	if dw3RowK[0] == nil || active != isaAVX512VNNI || d.w3 == nil || out.Q == nil || (stride != 1 && stride != 2) {
		return false
	}
	if h <= 0 || w <= 0 || c != d.C || len(x) < h*w*c {
		panic(fmt.Sprintf("q8.DWConv3x3: %d bytes for %dx%dx%d (weights of %d channels)", len(x), h, w, c, d.C))
	}
	oh, ow := (h-1)/stride+1, (w-1)/stride+1
	if y0 < 0 || y1 > oh || y0 > y1 {
		panic(fmt.Sprintf("q8.DWConv3x3: rows %d..%d of %d", y0, y1, oh))
	}
	pb := &PackedB{N: c, ColSum: d.sum}
	st, ok := checkCall("DWConv3x3", (y1-y0)*ow, pb, []int32{0}, 0, c, out)
	if !ok || c == 0 {
		return true
	}
	q := out.Q
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	sc.columns(xZero, pb, []int32{0}, 0, c, out)
	nch := (c + 63) / 64
	// Column terms and scales in the column image's channel order: dword
	// (lane l, j) of vector q is channel 16l+4q+j.
	sc.dwCT = grow32(sc.dwCT, nch*64)
	if cap(sc.dwSc) < nch*64 {
		sc.dwSc = make([]float32, nch*64)
	}
	sc.dwSc = sc.dwSc[:nch*64]
	for i := range nch * 64 {
		v, l, j := i%64/16, i%16/4, i%4
		ch := i - i%64 + 16*l + 4*v + j
		sc.dwCT[i], sc.dwSc[i] = 0, 0
		if ch < c {
			sc.dwCT[i], sc.dwSc[i] = sc.colTerm[ch], sc.scale[ch]
		}
	}
	// The column image of one output row: w+2 columns (the outer two are
	// the left and right padding) of nch 256-byte chunks; and a row of
	// zero points for the top and bottom padding.
	cs := nch * 256
	col := growU8(&sc.dw3Col, (w+2)*cs)
	zrow := growU8(&sc.dw3Zero, w*c+64)
	for i := range zrow {
		zrow[i] = uint8(xZero)
	}
	for i := range cs {
		col[i], col[(w+1)*cs+i] = uint8(xZero), uint8(xZero)
	}
	mask := ^uint64(0)
	if r := c % 64; r != 0 {
		mask = uint64(1)<<r - 1
	}
	row := func(r int) *uint8 {
		if r < 0 || r >= h {
			return &zrow[0]
		}
		return &x[r*w*c]
	}
	kern := dw3RowK[b2i(q.OutU8 == nil)]
	for y := y0; y < y1; y++ {
		r := y * stride
		dw3BuildK(&col[cs], row(r-1), row(r), row(r+1), w, c, nch, mask)
		for k := 0; k < nch; k++ {
			e := dw8Epi{colTerm: &sc.dwCT[64*k], scale: &sc.dwSc[64*k], ldc: q.Ldc, zp: st.zp, fmin: st.fmin, fmax: st.fmax, mask: ^uint64(0)}
			if n := c - 64*k; n < 64 {
				e.mask = uint64(1)<<n - 1
			}
			at := (y-y0)*ow*q.Ldc + 64*k
			if q.OutU8 != nil {
				e.dst = unsafe.Pointer(&q.OutU8[at])
			} else {
				e.dst = unsafe.Pointer(&q.OutS8[at])
			}
			kern(ow, &col[256*k], stride*cs, cs, &d.w3[256*k], cs, &e)
		}
	}
	return true
}

// packW3 lays 3×3 weights (w[t][ch] = W − W0, t = 3·ky+kx) out for dw3Row:
// per kernel column kx, per 64-channel chunk, four 64-byte vectors; dword
// (lane l, j) of vector q is channel 16l+4q+j with its three rows' weights
// in bytes 0..2.
func packW3(wt []int32, c int) []int8 {
	nch := (c + 63) / 64
	w3 := make([]int8, 3*nch*256)
	for kx := 0; kx < 3; kx++ {
		for ch := 0; ch < c; ch++ {
			// Channel 16l+4v+j of chunk k.
			k, l, v, j := ch/64, ch%64/16, ch%16/4, ch%4
			at := (kx*nch+k)*256 + 64*v + 16*l + 4*j
			for ky := 0; ky < 3; ky++ {
				w3[at+ky] = int8(wt[(3*ky+kx)*c+ch])
			}
		}
	}
	return w3
}

func growU8(b *[]uint8, n int) []uint8 {
	if cap(*b) < n {
		*b = make([]uint8, n)
	}
	*b = (*b)[:n]
	return *b
}
