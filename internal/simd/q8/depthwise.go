package q8

import "fmt"

// DWWeights are the weights of a depthwise convolution with one output
// channel per input channel, prepared for DWConv: w[t][c] = W[c][t] − W0[c]
// as int32 (exact: at most 255 in magnitude), padded so the kernels may read
// a full vector past the last channel.
type DWWeights struct {
	C, Taps int
	w       []int32
}

// PackDW prepares depthwise weights given as w[c*taps+t] (ONNX's [C][1][k…])
// with zero points wz of length 1 or C.
func PackDW(c, taps int, w []int8, wz []int32) *DWWeights {
	if c < 0 || taps < 0 || len(w) < c*taps || (len(wz) != 1 && len(wz) != c) {
		panic(fmt.Sprintf("q8.PackDW: %d channels × %d taps from %d weights, %d zero points", c, taps, len(w), len(wz)))
	}
	d := &DWWeights{C: c, Taps: taps, w: make([]int32, taps*c+16)}
	for ch := 0; ch < c; ch++ {
		z := wz[0]
		if len(wz) > 1 {
			z = wz[ch]
		}
		for t := 0; t < taps; t++ {
			d.w[t*c+ch] = int32(w[ch*taps+t]) - z
		}
	}
	return d
}

// DWConv computes rows output pixels of a depthwise convolution over an
// NHWC image: pixel i, channel c is sum over taps t of
// (base[offs[i*taps+t]+c] − xZero)·w[t][c], where a negative offset is a
// padding tap (it adds nothing, as the zero point would). Every offset must
// leave C bytes inside base. out is Int32 or a Requant (Bias and Scale per
// channel or per tensor), row i at out row i.
func DWConv(rows int, base []uint8, offs []int, xZero int32, d *DWWeights, out Output) {
	c, taps := d.C, d.Taps
	if rows < 0 || len(offs) < rows*taps {
		panic(fmt.Sprintf("q8.DWConv: %d offsets for %d rows of %d taps", len(offs), rows, taps))
	}
	for _, o := range offs[:rows*taps] {
		if o > len(base)-c {
			panic(fmt.Sprintf("q8.DWConv: pixel at %d of %d channels outside %d", o, c, len(base)))
		}
	}
	pb := &PackedB{N: c}
	st, ok := checkCall("DWConv", rows, pb, []int32{0}, 0, c, out)
	if !ok {
		return
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	// The output stage reads per-column terms: the bias alone (no zero-point
	// corrections: the taps subtract xZero themselves).
	pb.ColSum = make([]int32, c)
	sc.columns(0, pb, []int32{0}, 0, c, out)
	acc := grow32p(&sc.dwAcc, c)
	ker := kernels[active]
	for i := 0; i < rows; i++ {
		if dwAcc != nil && active == isaAVX512VNNI {
			if c > 0 {
				dwAcc(&acc[0], &base[0], &offs[i*taps], taps, &d.w[0], c, xZero)
			}
		} else {
			dwAccGo(acc, base, offs[i*taps:(i+1)*taps], d.w, c, xZero)
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

func dwAccGo(acc []int32, base []uint8, offs []int, w []int32, c int, xz int32) {
	clear(acc)
	for t, o := range offs {
		if o < 0 {
			continue
		}
		x := base[o : o+c]
		wt := w[t*c : t*c+c]
		for ch, v := range x {
			acc[ch] += (int32(v) - xz) * wt[ch]
		}
	}
}
