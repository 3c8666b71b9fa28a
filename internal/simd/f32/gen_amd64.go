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
}

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
		br := k.r(k.bcast[i%len(k.bcast)])
		p("\tVBROADCASTSS %d(SI), %s", aOff+i*4, br)
		for v := 0; v < k.nv; v++ {
			p("\tVFMADD231PS %s, %s, %s", k.r(v), br, k.acc(i, v))
		}
	}
}

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
			if k.reg == "Z" {
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
	if k.reg == "Z" {
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
	if k.reg == "Z" {
		p("\tVMOVUPS.Z %s, K%d, %s", mem, 2+v, dst)
	} else {
		p("\tVMASKMOVPS %s, Y%d, %s", mem, 2+v, dst)
	}
}

func (k kernel) maskedStore(v int, src, mem string) {
	if k.reg == "Z" {
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
			if k.reg == "Z" {
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
	kernel{name: "sgemmAVX512x8x32", reg: "Z", lanes: 16, mr: 8, nv: 2, accBase: 16, bcast: []int{2, 3, 4, 5, 6, 7, 8, 9}, unroll: 4}.gen()
	kernel{name: "sgemmAVX2x6x16", reg: "Y", lanes: 8, mr: 6, nv: 2, accBase: 4, bcast: []int{2, 3}, unroll: 4}.gen()
	peak("fmaPeakAVX512", "Z", 24)
	peak("fmaPeakAVX2", "Y", 12)
	if err := os.WriteFile("sgemm_amd64.s", out.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
