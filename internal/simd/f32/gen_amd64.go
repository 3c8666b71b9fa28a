//go:build ignore

// gen_amd64.go writes sgemm_amd64.s: the register-tiled SGEMM micro-kernels
// and the FMA peak loops. Run `go generate` in this folder after editing.
// The kernels are unrolled by hand-written loops here instead of avo, which is
// not a dependency of this module.
package main

import (
	"bytes"
	"fmt"
	"os"
)

var out bytes.Buffer

func p(format string, args ...any) { fmt.Fprintf(&out, format+"\n", args...) }

// kernel describes one broadcast-A micro-kernel: mr rows, nv vectors of
// width lanes per row; acc registers start at accBase.
type kernel struct {
	name    string
	reg     string // "Z" or "Y"
	lanes   int
	mr, nv  int
	accBase int
	bcast   []int // registers used for broadcasts, in rotation
	unroll  int
	kmask   bool // ymm kernel in EVEX form: K-register masks, Y16-Y31
	// embed: FMAs read A with an embedded broadcast ({1to16}) instead of a
	// VBROADCASTSS into a register first, 18 instead of 26 instructions a
	// depth step of the 8x32 kernel; on Zen 4, 2-5 points of the FMA peak
	// on ResNet-18's conv GEMMs (M64N3136K576 84 -> 86%, M256N196K2304 86
	// -> 92%), same FMAs in the same order.
	embed bool
}

// evex reports whether the kernel uses AVX-512 encodings (and K masks).
func (k kernel) evex() bool { return k.reg == "Z" || k.kmask }

func (k kernel) acc(i, v int) string { return fmt.Sprintf("%s%d", k.reg, k.accBase+i*k.nv+v) }
func (k kernel) r(n int) string      { return fmt.Sprintf("%s%d", k.reg, n) }

// step emits one depth step: A at byte offset aOff from SI, B at DI, which
// then advances by the B row stride R11.
func (k kernel) step(aOff int) {
	for v := 0; v < k.nv; v++ {
		p("\tVMOVUPS %d(DI), %s", v*k.lanes*4, k.r(v))
	}
	p("\tADDQ R11, DI")
	for i := 0; i < k.mr; i++ {
		if k.embed {
			for v := 0; v < k.nv; v++ {
				p("\tVFMADD231PS.BCST %d(SI), %s, %s", aOff+i*4, k.r(v), k.acc(i, v))
			}
			continue
		}
		br := k.r(k.bcast[i%len(k.bcast)])
		p("\tVBROADCASTSS %d(SI), %s", aOff+i*4, br)
		for v := 0; v < k.nv; v++ {
			p("\tVFMADD231PS %s, %s, %s", k.r(v), br, k.acc(i, v))
		}
	}
}

// aPrefetch is how far ahead (bytes) the AVX-512 kernels prefetch their A
// panel: a conv's packed weights are read once per call, from DRAM when the
// model's weights do not fit in L3 (ResNet-18's 46 MB), and each tile's
// panel is a new 16 KiB stream the hardware prefetcher has to pick up.
// Interleaved with ONNX Runtime 4+4 times, ResNet-18 went 1.20x -> 1.17x
// (MobileNetV2 even); 512 and 2048 were no better.
const aPrefetch = 1024

func (k kernel) gen() {
	nr := k.nv * k.lanes
	p("// func %s(kc int, a, b []float32, ldb int, c []float32, ldc int, ep *tileEp)", k.name)
	p("// %dx%d tile: C = ep(Σ_p a[p*%d:][0:%d] ⊗ b[p*ldb:][0:%d]).", k.mr, nr, k.mr, k.mr, nr)
	p("TEXT ·%s(SB), NOSPLIT, $0-104", k.name)
	p("\tMOVQ kc+0(FP), CX")
	p("\tMOVQ a_base+8(FP), SI")
	p("\tMOVQ b_base+32(FP), DI")
	p("\tMOVQ ldb+56(FP), R11")
	p("\tSHLQ $2, R11")
	p("\tMOVQ c_base+64(FP), DX")
	p("\tMOVQ ldc+88(FP), R8")
	p("\tSHLQ $2, R8")
	for i := 0; i < k.mr; i++ {
		for v := 0; v < k.nv; v++ {
			a := k.acc(i, v)
			if k.evex() {
				p("\tVPXORD %s, %s, %s", a, a, a)
			} else {
				p("\tVXORPS %s, %s, %s", a, a, a)
			}
		}
	}
	p("\tMOVQ CX, R9")
	p("\tSHRQ $%d, R9", log2(k.unroll))
	p("\tJZ %s_tail", k.name)
	p("%s_loop:", k.name)
	for u := 0; u < k.unroll; u++ {
		k.step(u * k.mr * 4)
	}
	if k.embed {
		for off := 0; off < k.unroll*k.mr*4; off += 64 {
			p("\tPREFETCHT0 %d(SI)", aPrefetch+off)
		}
	}
	p("\tADDQ $%d, SI", k.unroll*k.mr*4)
	p("\tDECQ R9")
	p("\tJNZ %s_loop", k.name)
	p("%s_tail:", k.name)
	p("\tANDQ $%d, CX", k.unroll-1)
	p("\tJZ %s_store", k.name)
	p("%s_tail1:", k.name)
	k.step(0)
	p("\tADDQ $%d, SI", k.mr*4)
	p("\tDECQ CX")
	p("\tJNZ %s_tail1", k.name)
	p("%s_store:", k.name)
	k.epilogue()
	p("")
}

// peak emits a loop of chains independent FMA chains, n iterations, touching
// no memory: the machine's FMA throughput ceiling.
func peak(name, reg string, chains int) {
	p("// func %s(n int)", name)
	p("TEXT ·%s(SB), NOSPLIT, $0-8", name)
	p("\tMOVQ n+0(FP), CX")
	for c := 0; c < chains; c++ {
		if reg == "Z" {
			p("\tVPXORD %s%d, %s%d, %s%d", reg, c+4, reg, c+4, reg, c+4)
		} else {
			p("\tVXORPS %s%d, %s%d, %s%d", reg, c+4, reg, c+4, reg, c+4)
		}
	}
	p("\tVXORPS X0, X0, X0")
	p("\tVXORPS X1, X1, X1")
	p("%s_loop:", name)
	for c := 0; c < chains; c++ {
		p("\tVFMADD231PS %s0, %s1, %s%d", reg, reg, reg, c+4)
	}
	p("\tDECQ CX")
	p("\tJNZ %s_loop", name)
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// epilogue emits the tileEp stages (see gemm.go for the flag bits and the
// struct layout) on the accumulators, then stores them to C. A tile flagged
// epEdge takes a second copy of the code that touches only rows rowLo..rowHi
// and the columns of its mask, in C and in the biases.
func (k kernel) epilogue() {
	p("\tMOVQ ep+96(FP), BX")
	p("\tMOVQ 0(BX), AX")
	p("\tTESTQ $32, AX")
	p("\tJNZ %s_edge", k.name)
	k.stages(false)
	p("%s_edge:", k.name)
	p("\tMOVQ 40(BX), R12")
	p("\tMOVQ 48(BX), R13")
	k.stages(true)
}

// rowGuard jumps to label unless row i is one of this call's rows (R12 =
// rowLo, R13 = rowHi). Reads of the row bias only need the upper bound.
func rowGuard(i int, lower bool, label string) {
	if lower {
		p("\tCMPQ R12, $%d", i)
		p("\tJGT %s", label)
	}
	p("\tCMPQ R13, $%d", i)
	p("\tJLE %s", label)
}

// masks loads the column masks for an edge tile: K2/K3 from kmask for zmm,
// Y2/Y3 from ymask for ymm (both free once the depth loop is done).
func (k kernel) masks() {
	if k.evex() {
		p("\tMOVQ 56(BX), R14")
		p("\tKMOVW R14, K2")
		p("\tSHRQ $16, R14")
		p("\tKMOVW R14, K3")
		return
	}
	p("\tVMOVDQU 64(BX), Y2")
	p("\tVMOVDQU 96(BX), Y3")
}

// maskedLoad loads vector v at mem into dst, zero outside the mask.
func (k kernel) maskedLoad(v int, mem, dst string) {
	if k.evex() {
		p("\tVMOVUPS.Z %s, K%d, %s", mem, 2+v, dst)
	} else {
		p("\tVMASKMOVPS %s, Y%d, %s", mem, 2+v, dst)
	}
}

func (k kernel) maskedStore(v int, src, mem string) {
	if k.evex() {
		p("\tVMOVUPS %s, K%d, %s", src, 2+v, mem)
	} else {
		p("\tVMASKMOVPS %s, Y%d, %s", src, 2+v, mem)
	}
}

func (k kernel) stages(edge bool) {
	n := k.name
	if edge {
		n += "_e"
	}
	row := func(i int) string { return fmt.Sprintf("%s_r%d", n, i) }
	p("\tTESTQ $1, AX")
	p("\tJZ %s_noload", n)
	p("\tMOVQ DX, R10")
	if edge {
		k.masks()
		for i := 0; i < k.mr; i++ {
			rowGuard(i, true, row(i)+"l")
			for v := 0; v < k.nv; v++ {
				k.maskedLoad(v, fmt.Sprintf("%d(R10)", v*k.lanes*4), k.r(v))
				p("\tVADDPS %s, %s, %s", k.r(v), k.acc(i, v), k.acc(i, v))
			}
			p("%sl:", row(i))
			if i+1 < k.mr {
				p("\tADDQ R8, R10")
			}
		}
	} else {
		for i := 0; i < k.mr; i++ {
			for v := 0; v < k.nv; v++ {
				p("\tVADDPS %d(R10), %s, %s", v*k.lanes*4, k.acc(i, v), k.acc(i, v))
			}
			if i+1 < k.mr {
				p("\tADDQ R8, R10")
			}
		}
	}
	p("%s_noload:", n)
	p("\tTESTQ $2, AX")
	p("\tJZ %s_norow", n)
	p("\tMOVQ 8(BX), R10")
	for i := 0; i < k.mr; i++ {
		if edge {
			rowGuard(i, false, n+"_norow")
		}
		p("\tVBROADCASTSS %d(R10), %s", 4*i, k.r(0))
		for v := 0; v < k.nv; v++ {
			p("\tVADDPS %s, %s, %s", k.r(0), k.acc(i, v), k.acc(i, v))
		}
	}
	p("%s_norow:", n)
	p("\tTESTQ $4, AX")
	p("\tJZ %s_nocol", n)
	p("\tMOVQ 16(BX), R10")
	if edge {
		k.masks()
	}
	for v := 0; v < k.nv; v++ {
		mem := fmt.Sprintf("%d(R10)", v*k.lanes*4)
		if edge {
			k.maskedLoad(v, mem, k.r(v))
		} else {
			p("\tVMOVUPS %s, %s", mem, k.r(v))
		}
	}
	for i := 0; i < k.mr; i++ {
		for v := 0; v < k.nv; v++ {
			p("\tVADDPS %s, %s, %s", k.r(v), k.acc(i, v), k.acc(i, v))
		}
	}
	p("%s_nocol:", n)
	p("\tTESTQ $8, AX")
	p("\tJZ %s_noclamp", n)
	// max(lo, x) then min(hi, x) with x as the second source: x86 returns
	// the second source when either is NaN, so NaN passes through, as in
	// the Go twin's comparisons.
	p("\tVBROADCASTSS 24(BX), %s", k.r(0))
	p("\tVBROADCASTSS 28(BX), %s", k.r(1))
	for i := 0; i < k.mr; i++ {
		for v := 0; v < k.nv; v++ {
			p("\tVMAXPS %s, %s, %s", k.acc(i, v), k.r(0), k.acc(i, v))
			p("\tVMINPS %s, %s, %s", k.acc(i, v), k.r(1), k.acc(i, v))
		}
	}
	p("%s_noclamp:", n)
	p("\tTESTQ $16, AX")
	p("\tJZ %s_noleaky", n)
	p("\tVBROADCASTSS 32(BX), %s", k.r(0))
	p("\tVXORPS %s, %s, %s", k.r(1), k.r(1), k.r(1))
	for i := 0; i < k.mr; i++ {
		for v := 0; v < k.nv; v++ {
			a := k.acc(i, v)
			if k.evex() {
				p("\tVCMPPS $1, %s, %s, K1", k.r(1), a)
				p("\tVMULPS %s, %s, K1, %s", k.r(0), a, a)
			} else {
				p("\tVCMPPS $1, %s, %s, %s", k.r(1), a, k.r(2))
				p("\tVMULPS %s, %s, %s", k.r(0), a, k.r(3))
				p("\tVBLENDVPS %s, %s, %s, %s", k.r(2), k.r(3), a, a)
			}
		}
	}
	p("%s_noleaky:", n)
	if edge {
		k.masks()
	}
	for i := 0; i < k.mr; i++ {
		if edge {
			rowGuard(i, true, row(i)+"s")
		}
		for v := 0; v < k.nv; v++ {
			mem := fmt.Sprintf("%d(DX)", v*k.lanes*4)
			if edge {
				k.maskedStore(v, k.acc(i, v), mem)
			} else {
				p("\tVMOVUPS %s, %s", k.acc(i, v), mem)
			}
		}
		if edge {
			p("%ss:", row(i))
		}
		if i+1 < k.mr {
			p("\tADDQ R8, DX")
		}
	}
	p("\tVZEROUPPER")
	p("\tRET")
}

// dwRows emits a depthwise kernel variant computing R members at a time,
// V vectors each (R·V = 4 accumulators: enough independent FMA chains to
// hide latency even on narrow maps). A member is an output row of a channel
// (members R rows apart) or one row of R channels (members a plane apart);
// each has its own weights, interleaved as w[t*R+r], and its bias at
// rowBias + r·memberBias:
//
//	out[g*outGroup + r*outStride + i] =
//	    stages(Σ_t w[t*R+r]·in[g*inGroup + r*inStride + i + offs[t]/4])
//
// for g < groups, r < R, i < n; taps summed in order, one FMA each. Columns
// go in blocks of V vectors, loads and stores masked to the remaining count.
func dwRows(name, reg string, lanes, R, V int) {
	z := reg == "Z"
	r := func(n int) string { return fmt.Sprintf("%s%d", reg, n) }
	vb := lanes * 4
	acc := func(row, v int) string { return r(row*V + v) }
	inAddr := func(row, off int) string {
		return [...]string{
			fmt.Sprintf("%d(R13)", off),
			fmt.Sprintf("%d(R13)(R14*1)", off),
			fmt.Sprintf("%d(R13)(R14*2)", off),
			fmt.Sprintf("%d(R13)(R15*1)", off),
		}[row]
	}
	outAddr := func(row, off int) string {
		return [...]string{
			fmt.Sprintf("%d(DI)", off),
			fmt.Sprintf("%d(DI)(DX*1)", off),
			fmt.Sprintf("%d(DI)(DX*2)", off),
			fmt.Sprintf("%d(R11)", off),
		}[row]
	}
	p("// func %s(groups, n int, out []float32, outStride, outGroup int, in []float32, inStride, inGroup int, offs []int, w []float32, ep *tileEp)", name)
	p("TEXT ·%s(SB), NOSPLIT, $24-152", name)
	p("\tMOVQ out_base+16(FP), DI")
	p("\tMOVQ outStride+40(FP), DX")
	p("\tSHLQ $2, DX")
	p("\tMOVQ in_base+56(FP), SI")
	p("\tMOVQ inStride+80(FP), R14")
	p("\tSHLQ $2, R14")
	p("\tLEAQ (R14)(R14*2), R15")
	p("\tMOVQ offs_base+96(FP), R8")
	p("\tMOVQ offs_len+104(FP), R9")
	p("\tMOVQ ep+144(FP), BX")
	p("\tMOVQ 0(BX), AX")
	p("\tMOVQ groups+0(FP), R11")
	p("\tMOVQ R11, left-8(SP)")
	p("\tMOVQ DI, orow-16(SP)")
	p("\tMOVQ SI, irow-24(SP)")
	p("%s_rows:", name)
	p("\tCMPQ left-8(SP), $0")
	p("\tJLE %s_done", name)
	p("\tMOVQ n+8(FP), CX")
	p("\tMOVQ orow-16(SP), DI")
	p("\tMOVQ irow-24(SP), SI")
	p("%s_blk:", name)
	p("\tTESTQ CX, CX")
	p("\tJLE %s_next", name)
	// body emits one block of V vectors per member: plain loads and stores
	// when the block is full, masked ones for the ragged end.
	body := func(masked bool, sfx string) {
		if R == 4 {
			p("\tLEAQ (DX)(DX*2), R11")
			p("\tADDQ DI, R11")
		}
		for i := 0; i < R*V; i++ {
			if z {
				p("\tVPXORD %s, %s, %s", r(i), r(i), r(i))
			} else {
				p("\tVXORPS %s, %s, %s", r(i), r(i), r(i))
			}
		}
		p("\tMOVQ w_base+120(FP), R10")
		p("\tXORQ R12, R12")
		p("%s_tap%s:", name, sfx)
		p("\tMOVQ (R8)(R12*8), R13")
		p("\tADDQ SI, R13")
		for row := 0; row < R; row++ {
			p("\tVBROADCASTSS %d(R10), %s", 4*row, r(8+row))
		}
		p("\tADDQ $%d, R10", 4*R)
		for row := 0; row < R; row++ {
			for v := 0; v < V; v++ {
				if !masked {
					p("\tVFMADD231PS %s, %s, %s", inAddr(row, v*vb), r(8+row), acc(row, v))
				} else if z {
					// Zero-masked load (masked-off lanes never fault past the
					// buffer), then a register FMA: a masked FMA with a memory
					// operand runs several times slower on Zen 4.
					t := fmt.Sprintf("Z%d", 4+(row*V+v)%4)
					p("\tVMOVUPS.Z %s, K%d, %s", inAddr(row, v*vb), 1+v, t)
					p("\tVFMADD231PS %s, %s, %s", t, r(8+row), acc(row, v))
				} else {
					p("\tVMASKMOVPS %s, Y%d, Y4", inAddr(row, v*vb), 12+v)
					p("\tVFMADD231PS Y4, %s, %s", r(8+row), acc(row, v))
				}
			}
		}
		p("\tINCQ R12")
		p("\tCMPQ R12, R9")
		p("\tJLT %s_tap%s", name, sfx)
		// Stages, as in the GEMM kernels.
		p("\tTESTQ $1, AX")
		p("\tJZ %s_nl%s", name, sfx)
		for row := 0; row < R; row++ {
			for v := 0; v < V; v++ {
				switch {
				case !masked:
					p("\tVADDPS %s, %s, %s", outAddr(row, v*vb), acc(row, v), acc(row, v))
					continue
				case z:
					p("\tVMOVUPS.Z %s, K%d, Z4", outAddr(row, v*vb), 1+v)
				default:
					p("\tVMASKMOVPS %s, Y%d, Y4", outAddr(row, v*vb), 12+v)
				}
				p("\tVADDPS %s, %s, %s", r(4), acc(row, v), acc(row, v))
			}
		}
		p("%s_nl%s:", name, sfx)
		p("\tTESTQ $2, AX")
		p("\tJZ %s_nb%s", name, sfx)
		p("\tMOVQ 8(BX), R12")
		for row := 0; row < R; row++ {
			if row > 0 {
				p("\tADDQ 128(BX), R12")
			}
			p("\tVBROADCASTSS (R12), %s", r(9))
			for v := 0; v < V; v++ {
				p("\tVADDPS %s, %s, %s", r(9), acc(row, v), acc(row, v))
			}
		}
		p("%s_nb%s:", name, sfx)
		p("\tTESTQ $8, AX")
		p("\tJZ %s_nc%s", name, sfx)
		p("\tVBROADCASTSS 24(BX), %s", r(9))
		p("\tVBROADCASTSS 28(BX), %s", r(10))
		for i := 0; i < R*V; i++ {
			p("\tVMAXPS %s, %s, %s", r(i), r(9), r(i))
			p("\tVMINPS %s, %s, %s", r(i), r(10), r(i))
		}
		p("%s_nc%s:", name, sfx)
		p("\tTESTQ $16, AX")
		p("\tJZ %s_nk%s", name, sfx)
		p("\tVBROADCASTSS 32(BX), %s", r(9))
		p("\tVXORPS %s, %s, %s", r(10), r(10), r(10))
		for i := 0; i < R*V; i++ {
			if z {
				p("\tVCMPPS $1, Z10, %s, K5", r(i))
				p("\tVMULPS Z9, %s, K5, %s", r(i), r(i))
			} else {
				p("\tVCMPPS $1, Y10, %s, Y11", r(i))
				p("\tVMULPS Y9, %s, Y4", r(i))
				p("\tVBLENDVPS Y11, Y4, %s, %s", r(i), r(i))
			}
		}
		p("%s_nk%s:", name, sfx)
		for row := 0; row < R; row++ {
			for v := 0; v < V; v++ {
				switch {
				case !masked:
					p("\tVMOVUPS %s, %s", acc(row, v), outAddr(row, v*vb))
				case z:
					p("\tVMOVUPS %s, K%d, %s", acc(row, v), 1+v, outAddr(row, v*vb))
				default:
					p("\tVMASKMOVPS %s, Y%d, %s", acc(row, v), 12+v, outAddr(row, v*vb))
				}
			}
		}
		p("\tADDQ $%d, DI", V*vb)
		p("\tADDQ $%d, SI", V*vb)
		p("\tSUBQ $%d, CX", V*lanes)
		p("\tJMP %s_blk", name)
	}
	p("\tCMPQ CX, $%d", V*lanes)
	p("\tJLT %s_mblk", name)
	body(false, "f")
	p("%s_mblk:", name)
	// Masks: vector v holds clamp(n − v·lanes, 0, lanes) live lanes.
	for v := 0; v < V; v++ {
		p("\tMOVQ CX, R11")
		if v > 0 {
			p("\tSUBQ $%d, R11", v*lanes)
		}
		p("\tCMPQ R11, $%d", lanes)
		p("\tJLE %s_m%da", name, v)
		p("\tMOVQ $%d, R11", lanes)
		p("%s_m%da:", name, v)
		p("\tTESTQ R11, R11")
		p("\tJGE %s_m%db", name, v)
		p("\tXORQ R11, R11")
		p("%s_m%db:", name, v)
		p("\tLEAQ dwMask<>+64(SB), R12")
		p("\tSHLQ $2, R11")
		p("\tSUBQ R11, R12")
		if z {
			p("\tVMOVDQU32 (R12), Z14")
			p("\tVPTESTMD Z14, Z14, K%d", 1+v)
		} else {
			p("\tVMOVDQU (R12), Y%d", 12+v)
		}
	}
	body(true, "p")
	p("%s_next:", name)
	p("\tDECQ left-8(SP)")
	p("\tMOVQ orow-16(SP), R11")
	p("\tMOVQ irow-24(SP), R12")
	p("\tMOVQ outGroup+48(FP), R13")
	p("\tLEAQ (R11)(R13*4), R11")
	p("\tMOVQ inGroup+88(FP), R13")
	p("\tLEAQ (R12)(R13*4), R12")
	p("\tMOVQ R11, orow-16(SP)")
	p("\tMOVQ R12, irow-24(SP)")
	p("\tJMP %s_rows", name)
	p("%s_done:", name)
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// gather2 emits the stride-2 row gather of the depthwise planes:
// dst[r*dstStride+i] = src[r*srcStride+2i] for r < rows, i < n. Loads stop
// at element 2(n−1) of a row, so nothing past the last needed input is read.
func gather2(name, reg string, lanes int) {
	z := reg == "Z"
	vb := lanes * 4
	p("// func %s(dst []float32, dstStride int, src []float32, srcStride int, rows, n int)", name)
	p("TEXT ·%s(SB), NOSPLIT, $0-80", name)
	p("\tMOVQ dst_base+0(FP), DI")
	p("\tMOVQ dstStride+24(FP), DX")
	p("\tSHLQ $2, DX")
	p("\tMOVQ src_base+32(FP), SI")
	p("\tMOVQ srcStride+56(FP), R8")
	p("\tSHLQ $2, R8")
	p("\tMOVQ rows+64(FP), R9")
	p("\tMOVQ n+72(FP), R10")
	mask := func(countReg string, k string) {
		p("\tLEAQ dwMask<>+64(SB), R13")
		p("\tMOVQ %s, R14", countReg)
		p("\tSHLQ $2, R14")
		p("\tSUBQ R14, R13")
		if z {
			p("\tVMOVDQU32 (R13), Z5")
			p("\tVPTESTMD Z5, Z5, %s", k)
		} else {
			p("\tVMOVDQU (R13), %s", k)
		}
	}
	if z {
		p("\tVMOVDQU32 gatherIdx<>(SB), Z2")
		p("\tMOVQ $15, R11")
		mask("R11", "K3") // the second load of a full vector needs 15 lanes
	} else {
		p("\tMOVQ $7, R11")
		mask("R11", "Y6")
	}
	p("%s_row:", name)
	p("\tTESTQ R9, R9")
	p("\tJLE %s_done", name)
	p("\tMOVQ DI, R11")
	p("\tMOVQ SI, R12")
	p("\tMOVQ R10, CX")
	p("%s_vec:", name)
	p("\tCMPQ CX, $%d", lanes)
	p("\tJLT %s_tail", name)
	if z {
		p("\tVMOVUPS (R12), Z0")
		p("\tVMOVUPS.Z 64(R12), K3, Z1")
		p("\tVMOVAPS Z2, Z4")
		p("\tVPERMI2PS Z1, Z0, Z4")
		p("\tVMOVUPS Z4, (R11)")
	} else {
		p("\tVMOVUPS (R12), Y0")
		p("\tVMASKMOVPS 32(R12), Y6, Y1")
		// shufps 0x88 takes elements 0,2 of each 128-bit half of both
		// sources; vpermpd 0xD8 puts the halves in order.
		p("\tVSHUFPS $0x88, Y1, Y0, Y4")
		p("\tVPERMPD $0xD8, Y4, Y4")
		p("\tVMOVUPS Y4, (R11)")
	}
	p("\tADDQ $%d, R12", 2*vb)
	p("\tADDQ $%d, R11", vb)
	p("\tSUBQ $%d, CX", lanes)
	p("\tJMP %s_vec", name)
	p("%s_tail:", name)
	p("\tTESTQ CX, CX")
	p("\tJLE %s_next", name)
	if z {
		// 2·CX−1 input lanes: min(16, ·) from the first vector, the rest
		// from the second.
		p("\tLEAQ -1(CX)(CX*1), AX")
		p("\tMOVQ AX, BX")
		p("\tCMPQ BX, $16")
		p("\tJLE %s_ta", name)
		p("\tMOVQ $16, BX")
		p("%s_ta:", name)
		mask("BX", "K1")
		p("\tSUBQ BX, AX")
		mask("AX", "K2")
		mask("CX", "K4")
		p("\tVMOVUPS.Z (R12), K1, Z0")
		p("\tVMOVUPS.Z 64(R12), K2, Z1")
		p("\tVMOVAPS Z2, Z4")
		p("\tVPERMI2PS Z1, Z0, Z4")
		p("\tVMOVUPS Z4, K4, (R11)")
	} else {
		p("%s_t1:", name)
		p("\tMOVL (R12), AX")
		p("\tMOVL AX, (R11)")
		p("\tADDQ $8, R12")
		p("\tADDQ $4, R11")
		p("\tDECQ CX")
		p("\tJNZ %s_t1", name)
	}
	p("%s_next:", name)
	p("\tADDQ DX, DI")
	p("\tADDQ R8, SI")
	p("\tDECQ R9")
	p("\tJMP %s_row", name)
	p("%s_done:", name)
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// copyRows emits dst[r*dstStride+i] = src[r*srcStride+i] for r < rows,
// i < n: the stride-1 depthwise plane fill in one call per channel.
func copyRows(name, reg string, lanes int) {
	z := reg == "Z"
	vb := lanes * 4
	p("// func %s(dst []float32, dstStride int, src []float32, srcStride int, rows, n int)", name)
	p("TEXT ·%s(SB), NOSPLIT, $0-80", name)
	p("\tMOVQ dst_base+0(FP), DI")
	p("\tMOVQ dstStride+24(FP), DX")
	p("\tSHLQ $2, DX")
	p("\tMOVQ src_base+32(FP), SI")
	p("\tMOVQ srcStride+56(FP), R8")
	p("\tSHLQ $2, R8")
	p("\tMOVQ rows+64(FP), R9")
	p("\tMOVQ n+72(FP), R10")
	if z {
		// The tail mask is the same for every row.
		p("\tMOVQ R10, AX")
		p("\tANDQ $%d, AX", lanes-1)
		p("\tLEAQ dwMask<>+64(SB), R13")
		p("\tSHLQ $2, AX")
		p("\tSUBQ AX, R13")
		p("\tVMOVDQU32 (R13), Z5")
		p("\tVPTESTMD Z5, Z5, K1")
	}
	p("%s_row:", name)
	p("\tTESTQ R9, R9")
	p("\tJLE %s_done", name)
	p("\tMOVQ DI, R11")
	p("\tMOVQ SI, R12")
	p("\tMOVQ R10, CX")
	p("%s_vec:", name)
	p("\tCMPQ CX, $%d", lanes)
	p("\tJLT %s_tail", name)
	p("\tVMOVUPS (R12), %s0", reg)
	p("\tVMOVUPS %s0, (R11)", reg)
	p("\tADDQ $%d, R12", vb)
	p("\tADDQ $%d, R11", vb)
	p("\tSUBQ $%d, CX", lanes)
	p("\tJMP %s_vec", name)
	p("%s_tail:", name)
	p("\tTESTQ CX, CX")
	p("\tJLE %s_next", name)
	if z {
		p("\tVMOVUPS.Z (R12), K1, Z0")
		p("\tVMOVUPS Z0, K1, (R11)")
	} else {
		p("%s_t1:", name)
		p("\tMOVL (R12), AX")
		p("\tMOVL AX, (R11)")
		p("\tADDQ $4, R12")
		p("\tADDQ $4, R11")
		p("\tDECQ CX")
		p("\tJNZ %s_t1", name)
	}
	p("%s_next:", name)
	p("\tADDQ DX, DI")
	p("\tADDQ R8, SI")
	p("\tDECQ R9")
	p("\tJMP %s_row", name)
	p("%s_done:", name)
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

func log2(n int) int {
	l := 0
	for n > 1 {
		n >>= 1
		l++
	}
	return l
}

func main() {
	p("// Code generated by gen_amd64.go; DO NOT EDIT.")
	p("")
	p("//go:build amd64 && !noasm")
	p("")
	p("#include \"textflag.h\"")
	p("")
	kernel{name: "sgemmAVX512x8x32", reg: "Z", lanes: 16, mr: 8, nv: 2, accBase: 16, bcast: []int{2, 3, 4, 5, 6, 7, 8, 9}, unroll: 4, embed: true}.gen()
	// Narrow variants for the last, ragged column panel: 16 columns in one
	// zmm, or 8 in one ymm (EVEX form, so masks work as in the zmm kernels).
	// On Zen 4 a ymm FMA costs half a zmm one, so a 49-column GEMM computes
	// 32+16+8 lanes instead of 64.
	kernel{name: "sgemmAVX512x8x16", reg: "Z", lanes: 16, mr: 8, nv: 1, accBase: 16, bcast: []int{2, 3, 4, 5, 6, 7, 8, 9}, unroll: 4, embed: true}.gen()
	kernel{name: "sgemmAVX512x8x8", reg: "Y", lanes: 8, mr: 8, nv: 1, accBase: 16, bcast: []int{2, 3, 4, 5, 6, 7, 8, 9}, unroll: 4, kmask: true}.gen()
	kernel{name: "sgemmAVX2x6x16", reg: "Y", lanes: 8, mr: 6, nv: 2, accBase: 4, bcast: []int{2, 3}, unroll: 4}.gen()
	for _, rv := range [][2]int{{1, 4}, {2, 2}, {4, 1}} {
		dwRows(fmt.Sprintf("dwAVX512r%dv%d", rv[0], rv[1]), "Z", 16, rv[0], rv[1])
		dwRows(fmt.Sprintf("dwAVX2r%dv%d", rv[0], rv[1]), "Y", 8, rv[0], rv[1])
	}
	// Read from dwMask<>+4·(16−r), the table gives r all-ones lanes then
	// zeros: the tail mask for r ≤ 16 remaining outputs.
	for i := 0; i < 32; i++ {
		v := "0x00000000"
		if i < 16 {
			v = "0xffffffff"
		}
		p("DATA dwMask<>+%d(SB)/4, $%s", 4*i, v)
	}
	p("GLOBL dwMask<>(SB), RODATA|NOPTR, $128")
	p("")
	for i := 0; i < 16; i++ {
		p("DATA gatherIdx<>+%d(SB)/4, $%d", 4*i, 2*i)
	}
	p("GLOBL gatherIdx<>(SB), RODATA|NOPTR, $64")
	p("")
	gather2("gather2AVX512", "Z", 16)
	gather2("gather2AVX2", "Y", 8)
	copyRows("copyRowsAVX512", "Z", 16)
	copyRows("copyRowsAVX2", "Y", 8)
	peak("fmaPeakAVX512", "Z", 24)
	peak("fmaPeakAVX2", "Y", 12)
	if err := os.WriteFile("sgemm_amd64.s", out.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
