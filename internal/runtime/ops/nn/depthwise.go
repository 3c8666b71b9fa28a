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
	// The assembly takes the interior columns when there are at least 8;
	// the stride-2 kernel's whole blocks read at most one element past the
	// interior, which must stay inside the row.
	useAsm := fast3 && useDWAsm && sw <= 2 && hiA-loA >= 8
	if useAsm && sw == 2 && loA*2-pw+2*((hiA-loA)&^7)+2 > W {
		useAsm = false
	}
	if fast3 && useDWAsm && sw <= 2 && sh <= 2 && dh == 1 && OW >= 8 {
		depthwise3x3Padded(ctx, g, x, w, bias, y, N, C, mult, ep)
		return
	}
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
					ow := loA
					if useAsm {
						// Whole blocks of 8, then one more block ending at
						// hiA that may overlap the previous one: the kernel
						// stores bias + window sum, so recomputing a column
						// is harmless and no column is left to scalar code.
						r2full := xc[(ih0+2*dh)*W:]
						nv := (hiA - loA) &^ 7
						s0 := loA*sw - pw
						if sw == 1 {
							dw3x3s1AVX2(&row[loA], &r0[s0], &r1[s0], &r2[s0], &wk[0], b, nv)
						} else {
							dw3x3s2AVX2(&row[loA], &r0[s0], &r1[s0], &r2[s0], &wk[0], b, nv)
						}
						ow = loA + nv
						if ow < hiA {
							last := hiA - 8
							s := last*sw - pw
							// The stride-2 kernel reads one element past its
							// last tap: allowed while inside the input array.
							if sw == 1 {
								dw3x3s1AVX2(&row[last], &r0[s], &r1[s], &r2[s], &wk[0], b, 8)
								ow = hiA
							} else if s+18 <= cap(r2full) {
								dw3x3s2AVX2(&row[last], &r0[s], &r1[s], &r2[s], &wk[0], b, 8)
								ow = hiA
							}
						}
					}
					for ; ow < hiA; ow++ {
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
								j := 0
								if nv := len(dst) &^ 7; useDWAsm && nv > 0 {
									axpyAVX2(&dst[0], &src[0], wv, nv)
									j = nv
								}
								for ; j < len(dst); j++ {
									dst[j] += wv * src[j]
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

// depthwise3x3Padded runs 3×3 depthwise convolutions (stride 1 or 2) with
// the assembly row kernels. Each input plane is first copied into a
// zero-bordered buffer, so that every output row is an interior row: the
// per-row work is two kernel calls, with no border cases, which is what
// matters for MobileNet's small planes (7×7 to 112×112).
func depthwise3x3Padded(ctx *runtime.Context, g *geom, x, w, bias, y []float32, N, C, mult int, ep epilogue) {
	M := C * mult
	H, W := g.in[0], g.in[1]
	OH, OW := g.out[0], g.out[1]
	sh, sw := g.stride[0], g.stride[1]
	ph, pw := g.padBegin[0], g.padBegin[1]
	PW := max(W+pw, (OW-1)*sw+3)
	PH := max(H+ph, (OH-1)*sh+3)
	ctx.Parallel(N*M, max(1, 8192/max(1, OH*OW*9)), func(c0, c1 int) {
		// One element of slack: the stride-2 kernel reads one past its
		// last tap.
		bufp := getBuf(PH*PW + 1)
		buf := *bufp
		clear(buf)
		lastPlane := -1
		for idx := c0; idx < c1; idx++ {
			img, m := idx/M, idx%M
			plane := img*C + m/mult
			if plane != lastPlane {
				xc := x[plane*H*W : (plane+1)*H*W]
				for ih := 0; ih < H; ih++ {
					copy(buf[(ih+ph)*PW+pw:(ih+ph)*PW+pw+W], xc[ih*W:(ih+1)*W])
				}
				lastPlane = plane
			}
			yc := y[idx*OH*OW : (idx+1)*OH*OW]
			wk := w[m*9 : (m+1)*9]
			b := float32(0)
			if bias != nil {
				b = bias[m]
			}
			nv := OW &^ 7
			for oh := 0; oh < OH; oh++ {
				row := yc[oh*OW : (oh+1)*OW]
				r0 := buf[oh*sh*PW:]
				r1 := r0[PW:]
				r2 := r1[PW:]
				last := OW - 8
				if sw == 1 {
					dw3x3s1AVX2(&row[0], &r0[0], &r1[0], &r2[0], &wk[0], b, nv)
					if nv < OW {
						dw3x3s1AVX2(&row[last], &r0[last], &r1[last], &r2[last], &wk[0], b, 8)
					}
				} else {
					dw3x3s2AVX2(&row[0], &r0[0], &r1[0], &r2[0], &wk[0], b, nv)
					if nv < OW {
						dw3x3s2AVX2(&row[last], &r0[2*last], &r1[2*last], &r2[2*last], &wk[0], b, 8)
					}
				}
				if ep.Act != actNone {
					for j, v := range row {
						row[j] = applyAct(&ep, v)
					}
				}
			}
		}
		putBuf(bufp)
	})
}
