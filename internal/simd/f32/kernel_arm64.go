//go:build arm64 && !noasm

package f32

import (
	"unsafe"

	"github.com/qtool/qtool/internal/simd/cpu"
)

//go:generate python3 gen_arm64.py

// sgemmNEON8x8 is the 8×8 NEON tile (sgemm_arm64.s): FMLA by element over
// kc steps, then the tile stored (load = 0) or added to C (load ≠ 0).
//
//go:noescape
func sgemmNEON8x8(kc int, a, b *float32, ldb int, c *float32, ldc int, load int)

// microNEON8x8 runs the assembly tile and the later epilogue stages in Go
// (tileStages: the generic kernel's order of float32 operations).
func microNEON8x8(kc int, a, b []float32, ldb int, c []float32, ldc int, ep *tileEp) {
	_ = a[:kc*8]
	_ = c[:7*ldc+8]
	if kc > 0 {
		_ = b[:(kc-1)*ldb+8]
	}
	sgemmNEON8x8(kc, unsafe.SliceData(a), unsafe.SliceData(b), ldb, unsafe.SliceData(c), ldc, int(ep.flags&epLoad))
	if ep.flags&^epLoad != 0 {
		tileStages(ep, c, ldc, 8, 8)
	}
}

// asimdKernel: 16 accumulators, 2 A and 2 B registers of arm64's 32; the
// depthwise and plane-copy kernels are the generic ones.
var asimdKernel = &kernel{
	name: "asimd", mr: 8, nr: 8, mc: 128, kc: 512, nc: 1024,
	micro:   microNEON8x8,
	dw:      [3]dwFunc{dwGeneric(1), dwGeneric(2), dwGeneric(4)},
	dwLanes: 8, gather2: gather2Generic, copyRows: copyRowsGeneric,
}

func archKernels() []*kernel {
	if cpu.ARM64.ASIMD {
		return []*kernel{asimdKernel}
	}
	return nil
}
