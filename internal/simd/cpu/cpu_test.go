package cpu

import (
	"runtime"
	"testing"
)

// Feature flags must be consistent with each other: an AVX-512 extension
// without the foundation, or dot product without NEON, means detection is
// reading the wrong bits.
func TestConsistent(t *testing.T) {
	if (X86.AVX512BW || X86.AVX512VL || X86.AVX512VNNI) && !X86.AVX512F {
		t.Errorf("AVX-512 extension without AVX512F: %+v", X86)
	}
	if (ARM64.DotProd || ARM64.I8MM) && !ARM64.ASIMD {
		t.Errorf("arm64 extension without ASIMD: %+v", ARM64)
	}
	if runtime.GOARCH != "amd64" && (X86.AVX2 || X86.AVX512F) {
		t.Errorf("x86 features reported on %s", runtime.GOARCH)
	}
	if runtime.GOARCH == "arm64" && !ARM64.ASIMD {
		t.Errorf("arm64 without ASIMD")
	}
	t.Logf("X86 %+v ARM64 %+v QTOOL_ISA=%q", X86, ARM64, Forced())
}

func TestForcedReadsEnvOnce(t *testing.T) {
	first := Forced()
	t.Setenv("QTOOL_ISA", "SomethingElse")
	if got := Forced(); got != first {
		t.Errorf("Forced changed after start-up: %q -> %q", first, got)
	}
}
