package q8

// This file checks the hand-encoded instructions of dw3_kernels_arm64.s on
// any host (it reads the file as text), with neon_encoding_test.go's
// independent encoder a64Encode and with llvm-mc where it is installed.

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func dw3Words(t *testing.T) []a64Word {
	f, err := os.Open("dw3_kernels_arm64.s")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	re := regexp.MustCompile(`^\s*WORD \$0x([0-9a-f]{8}) // (.*)$`)
	var ws []a64Word
	sc := bufio.NewScanner(f)
	for ln := 1; sc.Scan(); ln++ {
		if !strings.Contains(sc.Text(), "WORD") {
			continue
		}
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("dw3_kernels_arm64.s:%d: WORD without its instruction in a comment: %q", ln, sc.Text())
		}
		v, _ := strconv.ParseUint(m[1], 16, 32)
		ws = append(ws, a64Word{ln, uint32(v), m[2]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	// NEON: 2 kernels × 5 pixel variants × (36 SMLAL + 20 output-stage
	// WORDs); SDOT: 9 + 7 pixel variants × (12 SDOT + 20).
	if len(ws) < 10*56+16*32 {
		t.Fatalf("only %d WORDs in dw3_kernels_arm64.s", len(ws))
	}
	return ws
}

// dw3Encode is a64Encode plus the one form only these kernels use:
//
//	SDOT Vd.4S, Vn.16B, Vm.16B    0 1 0 01110 10 0 Rm 1001 0 1 Rn Rd
func dw3Encode(asm string) (uint32, error) {
	var d, n, m uint32
	if scan(asm, "sdot v%d.4s, v%d.16b, v%d.16b", &d, &n, &m) {
		if d > 31 || n > 31 || m > 31 {
			return 0, fmt.Errorf("bad operands in %q", asm)
		}
		return 1<<30 | 0b01110<<24 | 0b10<<22 | m<<16 | 0b1001<<12 | 1<<10 | n<<5 | d, nil
	}
	return a64Encode(asm)
}

// TestDW3EncoderKnown pins dw3Encode's own form on encodings printed by
// llvm-mc 14 (-mattr=+dotprod -show-encoding).
func TestDW3EncoderKnown(t *testing.T) {
	for _, c := range []struct {
		asm  string
		want uint32
	}{
		{"sdot v0.4s, v1.16b, v2.16b", 0x4e829420},
		{"sdot v31.4s, v17.16b, v9.16b", 0x4e89963f},
	} {
		if got, err := dw3Encode(c.asm); err != nil || got != c.want {
			t.Errorf("%s: %#08x, %v; want %#08x", c.asm, got, err, c.want)
		}
	}
	if _, err := dw3Encode("sdot v1.4s, v2.16b, v32.16b"); err == nil {
		t.Error("sdot with v32 accepted")
	}
}

// TestDW3Words checks every WORD of dw3_kernels_arm64.s against dw3Encode
// of the instruction its comment names.
func TestDW3Words(t *testing.T) {
	for _, w := range dw3Words(t) {
		want, err := dw3Encode(w.asm)
		if err != nil {
			t.Fatalf("dw3_kernels_arm64.s:%d: %v", w.line, err)
		}
		if w.word != want {
			t.Errorf("dw3_kernels_arm64.s:%d: %s is %#08x, WORD has %#08x", w.line, w.asm, want, w.word)
		}
	}
}

// TestDW3WordsLLVM assembles every commented instruction with llvm-mc and
// compares the whole listing with the WORDs.
func TestDW3WordsLLVM(t *testing.T) {
	mc, err := exec.LookPath("llvm-mc")
	if err != nil {
		if mc, err = exec.LookPath("llvm-mc-14"); err != nil {
			t.Skip("llvm-mc not installed")
		}
	}
	ws := dw3Words(t)
	var src strings.Builder
	for _, w := range ws {
		src.WriteString(w.asm + "\n")
	}
	path := filepath.Join(t.TempDir(), "k.s")
	if err := os.WriteFile(path, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(mc, "-triple=aarch64", "-mattr=+dotprod", "-show-encoding", path).CombinedOutput()
	if err != nil {
		t.Fatalf("llvm-mc: %v\n%s", err, out)
	}
	re := regexp.MustCompile(`encoding: \[0x([0-9a-f]{2}),0x([0-9a-f]{2}),0x([0-9a-f]{2}),0x([0-9a-f]{2})\]`)
	ms := re.FindAllStringSubmatch(string(out), -1)
	if len(ms) != len(ws) {
		t.Fatalf("llvm-mc printed %d encodings for %d instructions", len(ms), len(ws))
	}
	for i, m := range ms {
		var v uint32
		for b := 4; b >= 1; b-- { // little endian
			x, _ := strconv.ParseUint(m[b], 16, 8)
			v = v<<8 | uint32(x)
		}
		if v != ws[i].word {
			t.Errorf("dw3_kernels_arm64.s:%d: llvm-mc encodes %s as %#08x, WORD has %#08x", ws[i].line, ws[i].asm, v, ws[i].word)
		}
	}
}
