package q8

// This file checks the hand-encoded instructions of dw3_kernels_arm64.s on
// any host (it reads the file as text), with neon_encoding_test.go's
// independent encoder a64Encode and with llvm-mc where it is installed.

import (
	"fmt"
	"testing"
)

// dw3MinWords is the least number of WORDs in dw3_kernels_arm64.s. NEON: 2
// kernels × 5 pixel variants × (36 SMLAL + 20 output-stage WORDs); SDOT:
// 9 + 7 pixel variants × (12 SDOT + 20).
const dw3MinWords = 10*56 + 16*32

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
	checkWords(t, "dw3_kernels_arm64.s", dw3MinWords, dw3Encode)
}

// TestDW3WordsLLVM checks the WORDs of dw3_kernels_arm64.s against llvm-mc.
func TestDW3WordsLLVM(t *testing.T) {
	checkWordsLLVM(t, "dw3_kernels_arm64.s", dw3MinWords)
}
