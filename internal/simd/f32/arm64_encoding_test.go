package f32

// Checks the WORD-encoded instructions of sgemm_arm64.s on any host.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// a64EncodeF32 encodes the forms sgemm_arm64.s writes as WORDs, from the
// ARM ARM field layouts:
//
//	FMLA Vd.4S, Vn.4S, Vm.S[i]   0 1 0 01111 1 0 L M Rm(4) 0001 H 0 Rn Rd   i = H:L, m = M:Rm
//	FADD Vd.4S, Vn.4S, Vm.4S     0 1 0 01110 0 0 1 Rm 110101 Rn Rd
func a64EncodeF32(asm string) (uint32, error) {
	var d, n, m, i uint32
	if k, err := fmt.Sscanf(asm, "fmla v%d.4s, v%d.4s, v%d.s[%d]", &d, &n, &m, &i); err == nil && k == 4 &&
		fmt.Sprintf("fmla v%d.4s, v%d.4s, v%d.s[%d]", d, n, m, i) == asm && d < 32 && n < 32 && m < 32 && i < 4 {
		return 1<<30 | 0b01111<<24 | 1<<23 | (i&1)<<21 | m<<16 | 0b0001<<12 | (i>>1)<<11 | n<<5 | d, nil
	}
	if k, err := fmt.Sscanf(asm, "fadd v%d.4s, v%d.4s, v%d.4s", &d, &n, &m); err == nil && k == 3 &&
		fmt.Sprintf("fadd v%d.4s, v%d.4s, v%d.4s", d, n, m) == asm && d < 32 && n < 32 && m < 32 {
		return 1<<30 | 0b01110<<24 | 1<<21 | m<<16 | 0b110101<<10 | n<<5 | d, nil
	}
	return 0, fmt.Errorf("unknown instruction %q", asm)
}

func TestA64WordsF32(t *testing.T) {
	// Known encodings, from llvm-mc -triple=aarch64 -show-encoding.
	for _, c := range []struct {
		asm  string
		want uint32
	}{
		{"fmla v16.4s, v2.4s, v0.s[0]", 0x4f801050},
		{"fmla v31.4s, v3.4s, v1.s[3]", 0x4fa1187f},
		{"fmla v17.4s, v2.4s, v0.s[1]", 0x4fa01051},
		{"fmla v20.4s, v3.4s, v17.s[2]", 0x4f911874},
		{"fadd v2.4s, v2.4s, v16.4s", 0x4e30d442},
	} {
		if got, err := a64EncodeF32(c.asm); err != nil || got != c.want {
			t.Errorf("%s: %#08x, %v; want %#08x", c.asm, got, err, c.want)
		}
	}
	src, err := os.ReadFile("sgemm_arm64.s")
	if err != nil {
		t.Fatal(err)
	}
	ms := regexp.MustCompile(`WORD \$0x([0-9a-f]{8}) // ([^\n]*)`).FindAllStringSubmatch(string(src), -1)
	if len(ms) != strings.Count(string(src), "WORD") || len(ms) < 32 {
		t.Fatalf("%d parsable WORDs of %d", len(ms), strings.Count(string(src), "WORD"))
	}
	var text strings.Builder
	for _, m := range ms {
		v, _ := strconv.ParseUint(m[1], 16, 32)
		want, err := a64EncodeF32(m[2])
		if err != nil || uint32(v) != want {
			t.Errorf("%s: WORD %#08x, encodes to %#08x (%v)", m[2], v, want, err)
		}
		text.WriteString(m[2] + "\n")
	}
	mc, err := exec.LookPath("llvm-mc")
	if err != nil {
		t.Skip("llvm-mc not installed: checked against the field encoder only")
	}
	path := filepath.Join(t.TempDir(), "k.s")
	if err := os.WriteFile(path, []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(mc, "-triple=aarch64", "-show-encoding", path).CombinedOutput()
	if err != nil {
		t.Fatalf("llvm-mc: %v\n%s", err, out)
	}
	enc := regexp.MustCompile(`encoding: \[0x(..),0x(..),0x(..),0x(..)\]`).FindAllStringSubmatch(string(out), -1)
	if len(enc) != len(ms) {
		t.Fatalf("llvm-mc printed %d encodings for %d instructions", len(enc), len(ms))
	}
	for i, e := range enc {
		var v uint32
		for b := 4; b >= 1; b-- {
			x, _ := strconv.ParseUint(e[b], 16, 8)
			v = v<<8 | uint32(x)
		}
		if w, _ := strconv.ParseUint(ms[i][1], 16, 32); uint32(w) != v {
			t.Errorf("%s: llvm-mc %#08x, WORD %#08x", ms[i][2], v, w)
		}
	}
}
