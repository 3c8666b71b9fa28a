package q8

import (
	"fmt"
	"unsafe"
)

// dwEpi is the fused depthwise output stage as the row kernels read it
// (offsets fixed in gen_asm.py).
type dwEpi struct {
	colTerm *int32         // 0: at the chunk's first channel
	scale   *float32       // 8
	dst     unsafe.Pointer // 16: output row 0, chunk's first channel
	ldc     int            // 24: output row stride in bytes
	zp      int32          // 32
	fmin    float32        // 36
	fmax    float32        // 40
}

// DWWeights are the weights of a depthwise convolution with one output
// channel per input channel, prepared for DWConv: w[t][c] = W[c][t] − W0[c]
// as int32 (exact: at most 255 in magnitude), padded so the kernels may read
// a full vector past the last channel, and their per-channel sums.
type DWWeights struct {
	C, Taps int
	w       []int32
	sum     []int32
	// w8, when every W − W0 fits int8, holds the weights as dw8Row reads
	// them: per tap, per 64-channel chunk, four 64-byte vectors, vector j
	// with channel c0+4i+j's weight at byte 4i+j and zeros elsewhere.
	w8 []int8
	// w3 and w3y are the same for 3×3 layers as DWConv3x3 reads them
	// (packW3, 64- and 32-channel chunks).
	w3, w3y []int8
	// w3a is the same for the avx2 path's DWConv3x3 (packW3A; 3×3 layers
	// whose channels are a multiple of 8, any weights).
	w3a []int16
	// w16, on the arm64 paths, is w as int16 where every W − W0 fits
	// (dwAccN16 reads it; same layout and padding as w).
	w16 []int16
}

// dw8Epi is dw8Row's output stage (offsets fixed in gen_asm.py).
type dw8Epi struct {
	colTerm *int32         // 0: chunk's column terms, permuted
	scale   *float32       // 8: and scales
	dst     unsafe.Pointer // 16: output row 0, chunk's first channel
	ldc     int            // 24
	zp      int32          // 32
	fmin    float32        // 36
	fmax    float32        // 40
	mask    uint64         // 48: the chunk's channels, one bit per byte
}

// PackDW prepares depthwise weights given as w[c*taps+t] (ONNX's [C][1][k…])
// with zero points wz of length 1 or C.
func PackDW(c, taps int, w []int8, wz []int32) *DWWeights {
	if c < 0 || taps < 0 || len(w) < c*taps || (len(wz) != 1 && len(wz) != c) {
		panic(fmt.Sprintf("q8.PackDW: %d channels × %d taps from %d weights, %d zero points", c, taps, len(w), len(wz)))
	}
	d := &DWWeights{C: c, Taps: taps, w: make([]int32, taps*c+16), sum: make([]int32, c)}
	fits := true
	for ch := 0; ch < c; ch++ {
		z := wz[0]
		if len(wz) > 1 {
			z = wz[ch]
		}
		for t := 0; t < taps; t++ {
			v := int32(w[ch*taps+t]) - z
			d.w[t*c+ch] = v
			d.sum[ch] += v
			fits = fits && v >= -128 && v <= 127
		}
	}
	if dwAccN16 != nil {
		d.w16 = make([]int16, len(d.w))
		for i, v := range d.w {
			if v != int32(int16(v)) {
				d.w16 = nil
				break
			}
			d.w16[i] = int16(v)
		}
	}
	if taps == 9 && c%8 == 0 && dw3BuildAK != nil {
		d.w3a = packW3A(d.w, c)
	}
	if fits && taps > 0 {
		nch := (c + 63) / 64
		d.w8 = make([]int8, taps*nch*256)
		for t := 0; t < taps; t++ {
			for ch := 0; ch < c; ch++ {
				k, i, j := ch/64, ch%64/4, ch%4
				d.w8[(t*nch+k)*256+j*64+4*i+j] = int8(d.w[t*c+ch])
			}
		}
		if taps == 9 {
			d.w3, d.w3y = packW3(d.w, c, 64), packW3(d.w, c, 32)
		}
	}
	return d
}

// DWConv computes rows output pixels of a depthwise convolution over an
// NHWC image: pixel i, channel c is sum over taps t of
// (base[offs[i*taps+t]+c] − xZero)·w[t][c]. Padding taps point at a pixel of
// zero points (so they add nothing). Every offset must leave C bytes inside
// base. out is Int32 or a Requant (Bias and Scale per channel or per
// tensor), pixel i at output row i.
//
// The kernels compute sum x·w and the output stage subtracts xZero·sum w
// per channel, which is the same int32 value (two's complement arithmetic
// is exact modulo 2^32).
func DWConv(rows int, base []uint8, offs []int, xZero int32, d *DWWeights, out Output) {
	c, taps := d.C, d.Taps
	if rows < 0 || len(offs) < rows*taps {
		panic(fmt.Sprintf("q8.DWConv: %d offsets for %d rows of %d taps", len(offs), rows, taps))
	}
	for _, o := range offs[:rows*taps] {
		if o < 0 || o > len(base)-c {
			panic(fmt.Sprintf("q8.DWConv: pixel at %d of %d channels outside %d", o, c, len(base)))
		}
	}
	// The per-channel terms as Gemm's output stage reads them: colsum is
	// the weight sum, so −xZero·sum w (+ bias) lands in the column term.
	pb := &PackedB{N: c, ColSum: d.sum}
	st, ok := checkCall("DWConv", rows, pb, []int32{0}, 0, c, out)
	if !ok || c == 0 {
		return
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	sc.columns(xZero, pb, []int32{0}, 0, c, out)
	cStart := 0
	if dw8Row[0] != nil && active == isaAVX512VNNI && d.w8 != nil && out.Q != nil {
		// A last chunk of 32 channels or fewer goes to the kernels
		// below, which do not spend a 64-channel step on it.
		cStart = c
		if r := c % 64; r > 0 && r <= 32 {
			cStart = c - r
		}
		dw8Conv(sc, rows, base, offs, d, cStart, out.Q, &st)
		if cStart == c {
			return
		}
	}
	if dwRowQ[0] != nil && active == isaAVX512VNNI && taps > 0 {
		// Six pixels at a time over chunks of 64 channels while six
		// remain, then one at a time over chunks of 128, output stage fused.
		r6 := 0
		if dwRow6Q[0] != nil {
			r6 = rows - rows%6
		}
		for _, part := range [2]struct{ r0, rows, chunk int }{{0, r6, 64}, {r6, rows - r6, 128}} {
			if part.rows == 0 {
				continue
			}
			for c0 := cStart; c0 < c; c0 += part.chunk {
				n := min(part.chunk, c-c0)
				nb := (n + 15) / 16
				mask := uint16(0xffff)
				if r := n % 16; r != 0 {
					mask = uint16(1)<<r - 1
				}
				e := dwEpi{colTerm: &sc.colTerm[c0], scale: (*float32)(unsafe.Pointer(&sc.colTerm[c0]))}
				o := &offs[part.r0*taps]
				if out.Q == nil {
					e.dst, e.ldc = unsafe.Pointer(&out.C32[part.r0*out.Ldc+c0]), 4*out.Ldc
					if part.chunk == 64 {
						dwRow6I[nb-1](part.rows, &base[c0], o, taps, &d.w[c0], 4*c, mask, &e)
					} else {
						dwRowI[nb-1](part.rows, &base[c0], o, taps, &d.w[c0], 4*c, mask, &e)
					}
					continue
				}
				e.scale, e.ldc = &sc.scale[c0], out.Q.Ldc
				e.zp, e.fmin, e.fmax = st.zp, st.fmin, st.fmax
				if out.Q.OutU8 != nil {
					e.dst = unsafe.Pointer(&out.Q.OutU8[part.r0*out.Q.Ldc+c0])
				} else {
					e.dst = unsafe.Pointer(&out.Q.OutS8[part.r0*out.Q.Ldc+c0])
				}
				if part.chunk == 64 {
					dwRow6Q[nb-1](part.rows, &base[c0], o, taps, &d.w[c0], 4*c, mask, &e)
				} else {
					dwRowQ[nb-1](part.rows, &base[c0], o, taps, &d.w[c0], 4*c, mask, &e)
				}
			}
		}
		return
	}
	acc := grow32p(&sc.dwAcc, c)
	ker := kernels[active]
	simd := dwAcc[0] != nil && active == isaAVX512VNNI && taps > 0
	// The avxvnni path (AVX-VNNI without AVX-512) has AVX2 as well.
	avx2 := dwAccA[0] != nil && (active == isaAVX2 || active == isaAVXVNNI) && taps > 0
	neon := dwAccN != nil && (active == isaNEON || active == isaSDOT) && taps > 0
	for i := 0; i < rows; i++ {
		o := offs[i*taps : (i+1)*taps]
		if simd {
			for c0 := 0; c0 < c; c0 += 128 {
				n := min(128, c-c0)
				nb := (n + 15) / 16
				mask := uint16(0xffff)
				if r := n % 16; r != 0 {
					mask = uint16(1)<<r - 1
				}
				dwAcc[nb-1](&acc[c0], &base[c0], &o[0], taps, &d.w[c0], 4*c, mask)
			}
		} else if avx2 {
			dwAccAVX2(acc, base, o, d.w, c)
		} else if neon {
			dwAccNEONGo(acc, base, o, d, c)
		} else {
			dwAccGo(acc, base, o, d.w, c)
		}
		ct, nb := sc.colTerm[:c], sc.negBZ[:c]
		if out.Q == nil {
			ker.outI32(out.C32[i*out.Ldc:i*out.Ldc+c], acc, ct, nb, 0)
			continue
		}
		q := out.Q
		if q.OutU8 != nil {
			ker.outQ(q.OutU8[i*q.Ldc:i*q.Ldc+c], acc, ct, nb, 0, sc.scale[:c], &st)
		} else {
			ker.outQ(s8AsU8(q.OutS8[i*q.Ldc:i*q.Ldc+c]), acc, ct, nb, 0, sc.scale[:c], &st)
		}
	}
}

// dw8Conv is DWConv's requantizing path over byte weights, 64 channels per
// chunk, four pixels per kernel step.
func dw8Conv(sc *scratch, rows int, base []uint8, offs []int, d *DWWeights, cEnd int, q *Requant, st *stage) {
	c, taps := d.C, d.Taps
	nch := (c + 63) / 64
	sc.dwCT = grow32(sc.dwCT, nch*64)
	if cap(sc.dwSc) < nch*64 {
		sc.dwSc = make([]float32, nch*64)
	}
	sc.dwSc = sc.dwSc[:nch*64]
	for ch := range nch * 64 {
		src := ch - ch%64 + ch%4*16 + ch%64/4
		if ch < c {
			sc.dwCT[src], sc.dwSc[src] = sc.colTerm[ch], sc.scale[ch]
		} else {
			sc.dwCT[src], sc.dwSc[src] = 0, 0
		}
	}
	r4 := rows - rows%4
	for k := 0; k < (cEnd+63)/64; k++ {
		c0 := 64 * k
		e := dw8Epi{colTerm: &sc.dwCT[c0], scale: &sc.dwSc[c0], ldc: q.Ldc, zp: st.zp, fmin: st.fmin, fmax: st.fmax, mask: ^uint64(0)}
		if n := cEnd - c0; n < 64 {
			e.mask = uint64(1)<<n - 1
		}
		for _, part := range [2]struct{ r0, rows, kern int }{{0, r4, 0}, {r4, rows - r4, 1}} {
			if part.rows == 0 {
				continue
			}
			at := part.r0*q.Ldc + c0
			if q.OutU8 != nil {
				e.dst = unsafe.Pointer(&q.OutU8[at])
			} else {
				e.dst = unsafe.Pointer(&q.OutS8[at])
			}
			dw8Row[part.kern](part.rows, &base[c0], &offs[part.r0*taps], taps, &d.w8[k*256], nch*256, &e)
		}
	}
}

func dwAccGo(acc []int32, base []uint8, offs []int, w []int32, c int) {
	clear(acc)
	for t, o := range offs {
		x := base[o : o+c]
		wt := w[t*c : t*c+c]
		for ch, v := range x {
			acc[ch] += int32(v) * wt[ch]
		}
	}
}

// dwAccAVX2 is dwAccGo with the whole blocks of 8 channels in dwAccA.
func dwAccAVX2(acc []int32, base []uint8, offs []int, w []int32, c int) {
	c8 := c &^ 7
	for c0 := 0; c0 < c8; c0 += 64 {
		nb := min(64, c8-c0) / 8
		dwAccA[nb-1](&acc[c0], &base[c0], &offs[0], len(offs), &w[c0], 4*c)
	}
	if c8 == c {
		return
	}
	clear(acc[c8:c])
	for t, o := range offs {
		x := base[o+c8 : o+c]
		wt := w[t*c+c8 : t*c+c]
		for ch, v := range x {
			acc[c8+ch] += int32(v) * wt[ch]
		}
	}
}

// dwAccNEONGo is dwAccGo with the whole blocks of 16 channels in dwAccN16
// or, for weights beyond int16, dwAccN.
func dwAccNEONGo(acc []int32, base []uint8, offs []int, d *DWWeights, c int) {
	w := d.w
	c16 := c &^ 15
	if c16 > 0 {
		if d.w16 != nil {
			dwAccN16(&acc[0], &base[0], &offs[0], len(offs), &d.w16[0], 2*c, c16/16)
		} else {
			dwAccN(&acc[0], &base[0], &offs[0], len(offs), &w[0], 4*c, c16/16)
		}
	}
	if c16 == c {
		return
	}
	clear(acc[c16:c])
	for t, o := range offs {
		x := base[o+c16 : o+c]
		wt := w[t*c+c16 : t*c+c]
		for ch, v := range x {
			acc[c16+ch] += int32(v) * wt[ch]
		}
	}
}
