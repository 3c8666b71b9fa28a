package f32

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/simd/cpu"
)

func TestSetISA(t *testing.T) {
	prev := active()
	defer current.Store(prev)
	best := kernels()[0].name
	asimd := "generic" // an arm64 name on amd64 selects nothing better than Go
	if cpu.ARM64.ASIMD && len(archKernels()) > 0 {
		asimd = "asimd"
	}
	for name, want := range map[string]string{
		"":        best,
		"generic": "generic",
		"asimd":   asimd,
	} {
		if !setISA(name) || ISA() != want {
			t.Errorf("setISA(%q): ISA %q, want %q", name, ISA(), want)
		}
	}
	if cpu.X86.AVX2 && cpu.X86.FMA && len(archKernels()) > 0 {
		for name, want := range map[string]string{"avx2": "avx2", "avxvnni": "avx2"} {
			if setISA(name); ISA() != want {
				t.Errorf("setISA(%q): ISA %q, want %q", name, ISA(), want)
			}
		}
	}
	if cpu.X86.AVX512F && len(archKernels()) > 0 {
		if setISA("avx512"); ISA() != "avx512" {
			t.Errorf("setISA(avx512): %q", ISA())
		}
	}
	if setISA("nonsense") {
		t.Error("unknown ISA name accepted")
	}
}

// QTOOL_ISA is read at start-up: run this test binary again with it set.
func TestQTOOLISAEnv(t *testing.T) {
	if os.Getenv("F32_ISA_CHILD") != "" {
		os.Stdout.WriteString("ISA=" + ISA() + "\n")
		return
	}
	for _, isa := range []string{"generic", "GENERIC", "bogus"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestQTOOLISAEnv$", "-test.v")
		cmd.Env = append(os.Environ(), "F32_ISA_CHILD=1", "QTOOL_ISA="+isa)
		out, err := cmd.CombinedOutput()
		if err != nil && strings.Contains(err.Error(), "exec format error") {
			// A cross-compiled binary under qemu-user without binfmt
			// cannot re-execute itself.
			t.Skipf("cannot re-execute the test binary here: %v", err)
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", isa, err, out)
		}
		want := "ISA=generic"
		if isa == "bogus" {
			want = "ISA=" + kernels()[0].name // unknown names are ignored
		}
		if !strings.Contains(string(out), want) {
			t.Errorf("QTOOL_ISA=%s: child printed %q, want %q", isa, out, want)
		}
	}
}
