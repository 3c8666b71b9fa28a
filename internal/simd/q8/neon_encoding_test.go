package q8

// This file checks the arm64 kernels' hand-encoded instructions on any host
// (it reads kernels_arm64.s as text), so a wrong WORD is caught without an
// arm64 machine or qemu.

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

// a64Encode encodes the instruction forms the arm64 kernels write as
// WORDs, field by field from the ARM ARM (A64 Advanced SIMD, "vector x
// indexed element" and "shift by immediate" classes):
//
//	SDOT   Vd.4S, Vn.16B, Vm.4B[i]   0 1 0 01111 10 L M Rm(4) 1110 H 0 Rn Rd   i = H:L, m = M:Rm
//	SMLAL  Vd.4S, Vn.4H, Vm.H[i]     0 Q 0 01111 01 L M Rm(4) 0010 H 0 Rn Rd   i = H:L:M, m = Rm < 16; Q=1: SMLAL2 (Vn.8H)
//	SMLAL  Vd.4S, Vn.4H, Vm.4H       0 Q 0 01110 01 1 Rm 1000 00 Rn Rd         Q=1: SMLAL2 (Vn.8H, Vm.8H)
//	SXTL   Vd.8H, Vn.8B              0 0 0 011110 0001 000 10100 1 Rn Rd      (SSHLL #0)
//	MLA    Vd.4S, Vn.4S, Vm.S[i]     0 1 1 01111 10 L M Rm(4) 0000 H 0 Rn Rd   i = H:L, m = M:Rm
//	MLA    Vd.4S, Vn.4S, Vm.4S       0 1 0 01110 10 1 Rm 10010 1 Rn Rd
//	SCVTF  Vd.4S, Vn.4S              0 1 0 01110 0 0 10000 11101 10 Rn Rd
//	FCVTNS Vd.4S, Vn.4S              0 1 0 01110 0 0 10000 11010 10 Rn Rd
//	FMUL   Vd.4S, Vn.4S, Vm.4S       0 1 1 01110 0 0 1 Rm 11011 1 Rn Rd
//	FMAX   Vd.4S, Vn.4S, Vm.4S       0 1 0 01110 0 0 1 Rm 11110 1 Rn Rd
//	FMIN   Vd.4S, Vn.4S, Vm.4S       0 1 0 01110 1 0 1 Rm 11110 1 Rn Rd
//	SXTL   Vd.4S, Vn.4H              0 Q 0 011110 0010 000 10100 1 Rn Rd      Q=1: SXTL2 (Vn.8H; 8H from 16B likewise)
//	SADDW  Vd.4S, Vn.4S, Vm.4H       0 Q 0 01110 01 1 Rm 0001 00 Rn Rd         Q=1: SADDW2 (Vm.8H)
//	UADDL  Vd.8H, Vn.8B, Vm.8B       0 0 1 01110 00 1 Rm 0000 00 Rn Rd         U=0: SADDL
//	SMAX   Vd.16B, Vn.16B, Vm.16B    0 1 0 01110 00 1 Rm 01100 1 Rn Rd
//	FCMGT  Vd.4S, Vn.4S, Vm.4S       0 1 1 01110 1 0 1 Rm 11100 1 Rn Rd
//	FADD   Vd.4S, Vn.4S, Vm.4S       0 1 0 01110 0 0 1 Rm 11010 1 Rn Rd
//	MUL    Vd.4S, Vn.4S, Vm.4S       0 1 0 01110 10 1 Rm 10011 1 Rn Rd
//	SQXTN  Vd.4H, Vn.4S              0 Q 0 01110 01 10000 10100 10 Rn Rd      size 00: Vd.8B from Vn.8H; Q=1: …2, upper half
//	SQXTUN Vd.8B, Vn.8H              0 Q 1 01110 00 10000 10010 10 Rn Rd
func a64Encode(asm string) (uint32, error) {
	var d, n, m, i uint32
	op, _, _ := strings.Cut(asm, " ")
	switch {
	case scan(asm, "mla v%d.4s, v%d.4s, v%d.s[%d]", &d, &n, &m, &i):
		if d > 31 || n > 31 || m > 31 || i > 3 {
			return 0, fmt.Errorf("bad operands in %q", asm)
		}
		return 1<<30 | 1<<29 | 0b01111<<24 | 0b10<<22 | (i&1)<<21 | m<<16 | (i>>1)<<11 | n<<5 | d, nil
	case scan(asm, "mla v%d.4s, v%d.4s, v%d.4s", &d, &n, &m):
		if d > 31 || n > 31 || m > 31 {
			return 0, fmt.Errorf("bad operands in %q", asm)
		}
		return 1<<30 | 0b01110<<24 | 0b10<<22 | 1<<21 | m<<16 | 0b10010<<11 | 1<<10 | n<<5 | d, nil
	case (op == "scvtf" || op == "fcvtns") && scan(asm, op+" v%d.4s, v%d.4s", &d, &n):
		if d > 31 || n > 31 {
			return 0, fmt.Errorf("bad operands in %q", asm)
		}
		code := uint32(0b11101)
		if op == "fcvtns" {
			code = 0b11010
		}
		return 1<<30 | 0b01110<<24 | 0b10000<<17 | code<<12 | 0b10<<10 | n<<5 | d, nil
	case (op == "fmul" || op == "fmax" || op == "fmin") && scan(asm, op+" v%d.4s, v%d.4s, v%d.4s", &d, &n, &m):
		if d > 31 || n > 31 || m > 31 {
			return 0, fmt.Errorf("bad operands in %q", asm)
		}
		u, a, code := uint32(0), uint32(0), uint32(0b11110)
		switch op {
		case "fmul":
			u, code = 1, 0b11011
		case "fmin":
			a = 1
		}
		return 1<<30 | u<<29 | 0b01110<<24 | a<<23 | 1<<21 | m<<16 | code<<11 | 1<<10 | n<<5 | d, nil
	case scan(asm, "sdot v%d.4s, v%d.16b, v%d.4b[%d]", &d, &n, &m, &i):
		if d > 31 || n > 31 || m > 31 || i > 3 {
			return 0, fmt.Errorf("bad operands in %q", asm)
		}
		return 1<<30 | 0b01111<<24 | 0b10<<22 | (i&1)<<21 | m<<16 | 0b1110<<12 | (i>>1)<<11 | n<<5 | d, nil
	case scan(asm, "smlal v%d.4s, v%d.4h, v%d.h[%d]", &d, &n, &m, &i),
		scan(asm, "smlal2 v%d.4s, v%d.8h, v%d.h[%d]", &d, &n, &m, &i):
		if d > 31 || n > 31 || m > 15 || i > 7 {
			return 0, fmt.Errorf("bad operands in %q", asm)
		}
		var q uint32
		if strings.HasPrefix(asm, "smlal2") {
			q = 1
		}
		return q<<30 | 0b01111<<24 | 0b01<<22 | (i>>1&1)<<21 | (i&1)<<20 | m<<16 | 0b0010<<12 | (i>>2)<<11 | n<<5 | d, nil
	case scan(asm, "smlal v%d.4s, v%d.4h, v%d.4h", &d, &n, &m),
		scan(asm, "smlal2 v%d.4s, v%d.8h, v%d.8h", &d, &n, &m):
		if d > 31 || n > 31 || m > 31 {
			return 0, fmt.Errorf("bad operands in %q", asm)
		}
		var q uint32
		if strings.HasPrefix(asm, "smlal2") {
			q = 1
		}
		return q<<30 | 0b01110<<24 | 0b01<<22 | 1<<21 | m<<16 | 0b1000<<12 | n<<5 | d, nil
	case scan(asm, "sxtl v%d.8h, v%d.8b", &d, &n), scan(asm, "sxtl2 v%d.8h, v%d.16b", &d, &n),
		scan(asm, "sxtl v%d.4s, v%d.4h", &d, &n), scan(asm, "sxtl2 v%d.4s, v%d.8h", &d, &n):
		if d > 31 || n > 31 {
			return 0, fmt.Errorf("bad operands in %q", asm)
		}
		q, immh := uint32(0), uint32(0b0001)
		if op == "sxtl2" {
			q = 1
		}
		if strings.Contains(asm, ".4s") {
			immh = 0b0010
		}
		return q<<30 | 0b011110<<23 | immh<<19 | 0b101001<<10 | n<<5 | d, nil
	case scan(asm, "saddw v%d.4s, v%d.4s, v%d.4h", &d, &n, &m), scan(asm, "saddw2 v%d.4s, v%d.4s, v%d.8h", &d, &n, &m):
		if d > 31 || n > 31 || m > 31 {
			return 0, fmt.Errorf("bad operands in %q", asm)
		}
		var q uint32
		if op == "saddw2" {
			q = 1
		}
		return q<<30 | 0b01110<<24 | 0b01<<22 | 1<<21 | m<<16 | 0b0001<<12 | n<<5 | d, nil
	case scan(asm, "uaddl v%d.8h, v%d.8b, v%d.8b", &d, &n, &m), scan(asm, "saddl v%d.8h, v%d.8b, v%d.8b", &d, &n, &m):
		if d > 31 || n > 31 || m > 31 {
			return 0, fmt.Errorf("bad operands in %q", asm)
		}
		var u uint32
		if op == "uaddl" {
			u = 1
		}
		return u<<29 | 0b01110<<24 | 1<<21 | m<<16 | n<<5 | d, nil
	case scan(asm, "smax v%d.16b, v%d.16b, v%d.16b", &d, &n, &m):
		if d > 31 || n > 31 || m > 31 {
			return 0, fmt.Errorf("bad operands in %q", asm)
		}
		return 1<<30 | 0b01110<<24 | 1<<21 | m<<16 | 0b01100<<11 | 1<<10 | n<<5 | d, nil
	case (op == "fcmgt" || op == "fadd" || op == "mul") && scan(asm, op+" v%d.4s, v%d.4s, v%d.4s", &d, &n, &m):
		if d > 31 || n > 31 || m > 31 {
			return 0, fmt.Errorf("bad operands in %q", asm)
		}
		// U, then bits 23:22 (a:sz for the float ops, size for MUL), opcode.
		u, hi, code := uint32(0), uint32(0), uint32(0b11010) // fadd
		switch op {
		case "fcmgt":
			u, hi, code = 1, 0b10, 0b11100
		case "mul":
			hi, code = 0b10, 0b10011
		}
		return 1<<30 | u<<29 | 0b01110<<24 | hi<<22 | 1<<21 | m<<16 | code<<11 | 1<<10 | n<<5 | d, nil
	case (op == "sqxtn" || op == "sqxtun") && (scan(asm, op+" v%d.4h, v%d.4s", &d, &n) || scan(asm, op+" v%d.8b, v%d.8h", &d, &n)),
		(op == "sqxtn2" || op == "sqxtun2") && (scan(asm, op+" v%d.8h, v%d.4s", &d, &n) || scan(asm, op+" v%d.16b, v%d.8h", &d, &n)):
		if d > 31 || n > 31 {
			return 0, fmt.Errorf("bad operands in %q", asm)
		}
		var q, u, size uint32
		code := uint32(0b10100)
		if strings.HasSuffix(op, "2") {
			q = 1
		}
		if strings.HasPrefix(op, "sqxtun") {
			u, code = 1, 0b10010
		}
		if strings.HasSuffix(asm, ".4s") {
			size = 0b01
		}
		return q<<30 | u<<29 | 0b01110<<24 | size<<22 | 0b10000<<17 | code<<12 | 0b10<<10 | n<<5 | d, nil
	}
	return 0, fmt.Errorf("unknown instruction %q", asm)
}

// scan reports whether s is exactly format with its %d fields filled.
func scan(s, format string, args ...*uint32) bool {
	ptrs := make([]any, len(args))
	for i, a := range args {
		ptrs[i] = a
	}
	k, err := fmt.Sscanf(s, format, ptrs...)
	if err != nil || k != len(args) {
		return false
	}
	// Sscanf stops at the end of the format: reprint to reject trailing text.
	vals := make([]any, len(args))
	for i, a := range args {
		vals[i] = *a
	}
	return fmt.Sprintf(format, vals...) == s
}

// TestA64EncoderKnown pins the encoder on encodings printed by LLVM's
// assembler (llvm-mc -triple=aarch64 -mattr=+dotprod -show-encoding, LLVM 14),
// including the highest register numbers and every index bit.
func TestA64EncoderKnown(t *testing.T) {
	for _, c := range []struct {
		asm  string
		want uint32
	}{
		{"sdot v0.4s, v1.16b, v2.4b[0]", 0x4f82e020},
		{"sdot v31.4s, v7.16b, v5.4b[3]", 0x4fa5e8ff},
		{"sdot v8.4s, v6.16b, v20.4b[1]", 0x4fb4e0c8},
		{"sdot v17.4s, v30.16b, v16.4b[2]", 0x4f90ebd1},
		{"sxtl v6.8h, v6.8b", 0x0f08a4c6},
		{"sxtl v29.8h, v3.8b", 0x0f08a47d},
		{"smlal v16.4s, v6.4h, v0.h[0]", 0x0f4020d0},
		{"smlal2 v31.4s, v9.8h, v15.h[7]", 0x4f7f293f},
		{"smlal v20.4s, v7.4h, v5.h[5]", 0x0f5528f4},
		{"smlal2 v17.4s, v8.8h, v1.h[2]", 0x4f612111},
		{"smlal v16.4s, v1.4h, v20.4h", 0x0e748030},
		{"smlal2 v17.4s, v1.8h, v20.8h", 0x4e748031},
		{"smlal v31.4s, v30.4h, v9.4h", 0x0e6983df},
		{"smlal2 v0.4s, v17.8h, v31.8h", 0x4e7f8220},
		{"mla v4.4s, v2.4s, v31.s[0]", 0x6f9f0044},
		{"mla v5.4s, v3.4s, v17.s[3]", 0x6fb10865},
		{"mla v16.4s, v3.4s, v20.4s", 0x4eb49470},
		{"mla v31.4s, v17.4s, v9.4s", 0x4ea9963f},
		{"mla v0.4s, v30.4s, v31.4s", 0x4ebf97c0},
		{"scvtf v4.4s, v4.4s", 0x4e21d884},
		{"scvtf v21.4s, v9.4s", 0x4e21d935},
		{"fmul v4.4s, v4.4s, v6.4s", 0x6e26dc84},
		{"fmul v30.4s, v1.4s, v19.4s", 0x6e33dc3e},
		{"fmax v4.4s, v4.4s, v29.4s", 0x4e3df484},
		{"fmax v17.4s, v2.4s, v8.4s", 0x4e28f451},
		{"fmin v4.4s, v4.4s, v30.4s", 0x4ebef484},
		{"fmin v1.4s, v22.4s, v3.4s", 0x4ea3f6c1},
		{"fcvtns v4.4s, v4.4s", 0x4e21a884},
		{"fcvtns v19.4s, v2.4s", 0x4e21a853},
		{"sxtl2 v19.8h, v0.16b", 0x4f08a413},
		{"sxtl v2.4s, v18.4h", 0x0f10a642},
		{"sxtl2 v31.4s, v7.8h", 0x4f10a4ff},
		{"sxtl v0.4s, v31.4h", 0x0f10a7e0},
		{"saddw v0.4s, v0.4s, v2.4h", 0x0e621000},
		{"saddw2 v31.4s, v17.4s, v9.8h", 0x4e69123f},
		{"uaddl v2.8h, v2.8b, v3.8b", 0x2e230042},
		{"saddl v31.8h, v17.8b, v9.8b", 0x0e29023f},
		{"uaddl v4.8h, v30.8b, v31.8b", 0x2e3f03c4},
		{"smax v0.16b, v0.16b, v2.16b", 0x4e226400},
		{"smax v31.16b, v9.16b, v17.16b", 0x4e31653f},
		{"fcmgt v14.4s, v27.4s, v10.4s", 0x6eaae76e},
		{"fcmgt v31.4s, v0.4s, v19.4s", 0x6eb3e41f},
		{"fadd v10.4s, v10.4s, v23.4s", 0x4e37d54a},
		{"fadd v1.4s, v30.4s, v7.4s", 0x4e27d7c1},
		{"mul v10.4s, v10.4s, v25.4s", 0x4eb99d4a},
		{"mul v31.4s, v1.4s, v16.4s", 0x4eb09c3f},
		{"sqxtn v18.4h, v10.4s", 0x0e614952},
		{"sqxtn2 v18.8h, v11.4s", 0x4e614972},
		{"sqxtn v22.8b, v18.8h", 0x0e214a56},
		{"sqxtn2 v22.16b, v19.8h", 0x4e214a76},
		{"sqxtun v22.8b, v18.8h", 0x2e212a56},
		{"sqxtun2 v31.16b, v3.8h", 0x6e21287f},
		{"sqxtn v0.4h, v31.4s", 0x0e614be0},
		{"sqxtun2 v5.16b, v31.8h", 0x6e212be5},
	} {
		got, err := a64Encode(c.asm)
		if err != nil || got != c.want {
			t.Errorf("%s: %#08x, %v; want %#08x", c.asm, got, err, c.want)
		}
	}
	for _, bad := range []string{"smlal v1.4s, v2.4h, v16.h[0]", "sdot v1.4s, v2.16b, v3.4b[4]", "sdot v1.4s, v2.16b, v3.4b[1] x",
		"sqxtn2 v1.4h, v2.4s", "sxtl v1.4s, v2.8b", "saddw2 v1.4s, v2.4s, v3.4h", "fcmgt v1.2s, v2.2s, v3.2s"} {
		if _, err := a64Encode(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

type a64Word struct {
	line int
	word uint32
	asm  string
}

// a64Words reads the WORDs of file, each with its instruction in a
// comment, failing where there are fewer than least (a generator that
// stopped writing them).
func a64Words(t *testing.T, file string, least int) []a64Word {
	t.Helper()
	f, err := os.Open(file)
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
			t.Fatalf("%s:%d: WORD without its instruction in a comment: %q", file, ln, sc.Text())
		}
		v, _ := strconv.ParseUint(m[1], 16, 32)
		ws = append(ws, a64Word{ln, uint32(v), m[2]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(ws) < least {
		t.Fatalf("only %d WORDs in %s", len(ws), file)
	}
	return ws
}

// checkWords checks every WORD of file (at least least of them) against
// encode of the instruction its comment names.
func checkWords(t *testing.T, file string, least int, encode func(asm string) (uint32, error)) {
	t.Helper()
	for _, w := range a64Words(t, file, least) {
		want, err := encode(w.asm)
		if err != nil {
			t.Fatalf("%s:%d: %v", file, w.line, err)
		}
		if w.word != want {
			t.Errorf("%s:%d: %s is %#08x, WORD has %#08x", file, w.line, w.asm, want, w.word)
		}
	}
}

// checkWordsLLVM assembles every commented instruction of file with
// llvm-mc and compares the whole listing with the WORDs.
func checkWordsLLVM(t *testing.T, file string, least int) {
	t.Helper()
	mc, err := exec.LookPath("llvm-mc")
	if err != nil {
		if mc, err = exec.LookPath("llvm-mc-14"); err != nil {
			t.Skip("llvm-mc not installed")
		}
	}
	ws := a64Words(t, file, least)
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
			t.Errorf("%s:%d: llvm-mc encodes %s as %#08x, WORD has %#08x", file, ws[i].line, ws[i].asm, v, ws[i].word)
		}
	}
}

// TestA64Words checks every WORD of kernels_arm64.s against the encoder
// of the instruction its comment names.
func TestA64Words(t *testing.T) {
	checkWords(t, "kernels_arm64.s", 900, a64Encode)
}

// TestA64WordsLLVM checks the WORDs of kernels_arm64.s against llvm-mc.
func TestA64WordsLLVM(t *testing.T) {
	checkWordsLLVM(t, "kernels_arm64.s", 900)
}
