package q8

import (
	"reflect"
	"testing"

	"github.com/klauspost/cpuid/v2"

	"github.com/qtool/qtool/internal/simd/cpu"
)

// TestLookupKernels checks which kernel each x86 path registered, so that
// TestLookupU8 cannot pass by testing the Go twin under a SIMD path's name:
// on an AVX512VBMI machine the avx512vnni path must run lookupVBMI.
func TestLookupKernels(t *testing.T) {
	if !cpu.X86.AVX2 {
		t.Skip("no AVX2")
	}
	fn := func(f func(dst, src *uint8, n int, table *[256]uint8)) uintptr {
		if f == nil {
			return 0
		}
		return reflect.ValueOf(f).Pointer()
	}
	x86, vbmi := fn(lookupX86), fn(lookupVBMI)
	for _, p := range []isa{isaAVX2, isaAVXVNNI} {
		if fn(lookupKern[p]) != x86 {
			t.Errorf("path %v: LookupU8 kernel is not lookupX86", p)
		}
	}
	want, name := x86, "lookupX86"
	if cpu.X86.AVX512F && cpu.X86.AVX512BW && cpuid.CPU.Supports(cpuid.AVX512VBMI) {
		want, name = vbmi, "lookupVBMI"
	}
	if fn(lookupKern[isaAVX512VNNI]) != want {
		t.Errorf("path avx512vnni: LookupU8 kernel is not %s", name)
	}
	t.Logf("avx512vnni path runs %s (avx512vnni path available: %v)", name, kernels[isaAVX512VNNI].ok)
}
