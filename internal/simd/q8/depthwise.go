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
}

// PackDW prepares depthwise weights given as w[c*taps+t] (ONNX's [C][1][k…])
// with zero points wz of length 1 or C.
func PackDW(c, taps int, w []int8, wz []int32) *DWWeights {
	if c < 0 || taps < 0 || len(w) < c*taps || (len(wz) != 1 && len(wz) != c) {
		panic(fmt.Sprintf("q8.PackDW: %d channels × %d taps from %d weights, %d zero points", c, taps, len(w), len(wz)))
	}
	d := &DWWeights{C: c, Taps: taps, w: make([]int32, taps*c+16), sum: make([]int32, c)}
	for ch := 0; ch < c; ch++ {
		z := wz[0]
		if len(wz) > 1 {
			z = wz[ch]
		}
		for t := 0; t < taps; t++ {
			v := int32(w[ch*taps+t]) - z
			d.w[t*c+ch] = v
			d.sum[ch] += v
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
	if dwRowQ[0] != nil && active == isaAVX512VNNI && taps > 0 {
		// The whole block in one call per 128 channels, output stage fused.
		for c0 := 0; c0 < c; c0 += 128 {
			n := min(128, c-c0)
			mask := uint16(0xffff)
			if r := n % 16; r != 0 {
				mask = uint16(1)<<r - 1
			}
			e := dwEpi{colTerm: &sc.colTerm[c0], scale: (*float32)(unsafe.Pointer(&sc.colTerm[c0]))}
			if out.Q == nil {
				e.dst, e.ldc = unsafe.Pointer(&out.C32[c0]), 4*out.Ldc
				dwRowI[(n+15)/16-1](rows, &base[c0], &offs[0], taps, &d.w[c0], 4*c, mask, &e)
				continue
			}
			e.scale, e.ldc = &sc.scale[c0], out.Q.Ldc
			e.zp, e.fmin, e.fmax = st.zp, st.fmin, st.fmax
			if out.Q.OutU8 != nil {
				e.dst = unsafe.Pointer(&out.Q.OutU8[c0])
			} else {
				e.dst = unsafe.Pointer(&out.Q.OutS8[c0])
			}
			dwRowQ[(n+15)/16-1](rows, &base[c0], &offs[0], taps, &d.w[c0], 4*c, mask, &e)
		}
		return
	}
	acc := grow32p(&sc.dwAcc, c)
	ker := kernels[active]
	simd := dwAcc[0] != nil && active == isaAVX512VNNI && taps > 0
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
