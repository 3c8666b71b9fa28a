package nn

import "github.com/qtool/qtool/internal/runtime"

// depthwise2d is the direct kernel for 2-D convolutions whose groups have one
// input channel (MobileNet's depthwise layers): im2col would copy every input
// kSize times for a GEMM with a single row, so instead each output row is
// accumulated tap by tap, with a fused 3×3 loop for interior pixels.
// mult is the channel multiplier (output channels per input channel).
func depthwise2d(ctx *runtime.Context, g *geom, x, w, bias, y []float32, N, C, mult int, ep epilogue) {
	M := C * mult
	H, W := g.in[0], g.in[1]
	OH, OW := g.out[0], g.out[1]
	KH, KW := g.k[0], g.k[1]
	sh, sw := g.stride[0], g.stride[1]
	dh, dw := g.dil[0], g.dil[1]
	ph, pw := g.padBegin[0], g.padBegin[1]
	// For each kernel column, the output columns whose input column is
	// inside the image: [lo[kw], hi[kw]).
	lo := make([]int, KW)
	hi := make([]int, KW)
	for kw := 0; kw < KW; kw++ {
		off := kw*dw - pw
		l := 0
		if off < 0 {
			l = (-off + sw - 1) / sw
		}
		h := 0
		if W-off > 0 {
			h = (W - off + sw - 1) / sw
		}
		lo[kw], hi[kw] = min(l, OW), min(max(h, l), OW)
	}
	// Columns where every tap is inside: the fused 3×3 loop's range.
	loA, hiA := 0, OW
	for kw := 0; kw < KW; kw++ {
		loA, hiA = max(loA, lo[kw]), min(hiA, hi[kw])
	}
	fast3 := KH == 3 && KW == 3 && dw == 1 && hiA > loA
	ctx.Parallel(N*M, max(1, 8192/max(1, OH*OW*KH*KW)), func(c0, c1 int) {
		for idx := c0; idx < c1; idx++ {
			img, m := idx/M, idx%M
			xc := x[(img*C+m/mult)*H*W : (img*C+m/mult+1)*H*W]
			yc := y[idx*OH*OW : (idx+1)*OH*OW]
			wk := w[m*KH*KW : (m+1)*KH*KW]
			b := float32(0)
			if bias != nil {
				b = bias[m]
			}
			for oh := 0; oh < OH; oh++ {
				row := yc[oh*OW : (oh+1)*OW]
				for j := range row {
					row[j] = b
				}
				ih0 := oh*sh - ph
				if fast3 && ih0 >= 0 && ih0+2*dh < H {
					r0 := xc[ih0*W : ih0*W+W]
					r1 := xc[(ih0+dh)*W : (ih0+dh)*W+W]
					r2 := xc[(ih0+2*dh)*W : (ih0+2*dh)*W+W]
					w0, w1, w2, w3, w4, w5, w6, w7, w8 := wk[0], wk[1], wk[2], wk[3], wk[4], wk[5], wk[6], wk[7], wk[8]
					for ow := loA; ow < hiA; ow++ {
						s := ow*sw - pw
						a0, a1, a2 := r0[s:s+3], r1[s:s+3], r2[s:s+3]
						row[ow] = b + w0*a0[0] + w1*a0[1] + w2*a0[2] +
							w3*a1[0] + w4*a1[1] + w5*a1[2] +
							w6*a2[0] + w7*a2[1] + w8*a2[2]
					}
					// The border columns tap by tap.
					for kh := 0; kh < 3; kh++ {
						xr := xc[(ih0+kh*dh)*W : (ih0+kh*dh+1)*W]
						for kw := 0; kw < 3; kw++ {
							wv := wk[kh*3+kw]
							off := kw - pw
							for ow := lo[kw]; ow < min(hi[kw], loA); ow++ {
								row[ow] += wv * xr[ow*sw+off]
							}
							for ow := max(lo[kw], hiA); ow < hi[kw]; ow++ {
								row[ow] += wv * xr[ow*sw+off]
							}
						}
					}
				} else {
					for kh := 0; kh < KH; kh++ {
						ih := ih0 + kh*dh
						if ih < 0 || ih >= H {
							continue
						}
						xr := xc[ih*W : (ih+1)*W]
						for kw := 0; kw < KW; kw++ {
							wv := wk[kh*KW+kw]
							off := kw*dw - pw
							l, h := lo[kw], hi[kw]
							if h <= l {
								continue
							}
							if sw == 1 {
								src := xr[l+off : h+off]
								dst := row[l:h]
								for j, v := range src {
									dst[j] += wv * v
								}
							} else {
								for ow := l; ow < h; ow++ {
									row[ow] += wv * xr[ow*sw+off]
								}
							}
						}
					}
				}
				if ep.Act != actNone {
					for j, v := range row {
						row[j] = applyAct(&ep, v)
					}
				}
			}
		}
	})
}
