// Package cpu reports the instruction-set extensions the SIMD kernels may use.
//
// It is deliberately tiny: feature flags detected once at start-up with
// klauspost/cpuid/v2, and Forced, the QTOOL_ISA override a user (or a test
// run) sets to pin every kernel package to one code path.
//
// Recognised QTOOL_ISA values, by convention shared by the kernel packages:
//
//	generic                      pure-Go kernels only
//	avx2                         AVX2 (+FMA for float) kernels, no AVX-512
//	avxvnni                      AVX2 plus the VEX AVX-VNNI dot product
//	avx512                       AVX-512 F/BW/VL kernels
//	avx512vnni                   AVX-512 VNNI kernels
//	asimd, dotprod, i8mm         arm64 NEON, SDOT/UDOT, SMMLA families
//
// A kernel package that is asked for a path the hardware lacks (or that it does
// not implement) falls back to the best path it has below it, so the override
// can only lower, never raise, the ISA in use.
package cpu

import (
	"os"
	"strings"
	"sync"

	"github.com/klauspost/cpuid/v2"
)

// X86 holds the amd64 extensions detected on this machine (all false elsewhere).
// The flags already include the OS check that the wider register state is
// saved on context switch (cpuid does the XGETBV test).
var X86 struct {
	AVX2, FMA, AVX512F, AVX512BW, AVX512VL, AVX512VNNI, AVXVNNI bool
}

// ARM64 holds the arm64 extensions detected on this machine (all false elsewhere).
var ARM64 struct {
	ASIMD, DotProd, I8MM bool
}

func init() {
	c := &cpuid.CPU
	X86.AVX2 = c.Supports(cpuid.AVX2)
	X86.FMA = c.Supports(cpuid.FMA3)
	X86.AVX512F = c.Supports(cpuid.AVX512F)
	X86.AVX512BW = c.Supports(cpuid.AVX512BW)
	X86.AVX512VL = c.Supports(cpuid.AVX512VL)
	X86.AVX512VNNI = c.Supports(cpuid.AVX512VNNI)
	X86.AVXVNNI = c.Supports(cpuid.AVXVNNI)
	ARM64.ASIMD = c.Supports(cpuid.ASIMD)
	ARM64.DotProd = c.Supports(cpuid.ASIMDDP)
	ARM64.I8MM = c.Supports(cpuid.I8MM)
}

var (
	forcedOnce sync.Once
	forced     string
)

// Forced returns the lower-cased QTOOL_ISA value, read once per process, or ""
// when the variable is unset (meaning: use the best path the CPU supports).
func Forced() string {
	forcedOnce.Do(func() {
		forced = strings.ToLower(strings.TrimSpace(os.Getenv("QTOOL_ISA")))
	})
	return forced
}
