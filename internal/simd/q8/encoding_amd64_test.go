package q8

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestAVXVNNIEncoding checks the hand-encoded VEX dot products of
// kernAVXVNNI, which the development machines cannot execute, against GNU
// as: every DP_Y* macro in kernels_amd64.s must hold exactly the bytes that
// binutils assembles for the instruction named in the comment above it.
// (The strip logic around them is the same as kernAVXVNNIEVEX's, which the
// other tests run.)
func TestAVXVNNIEncoding(t *testing.T) {
	as, err1 := exec.LookPath("as")
	objcopy, err2 := exec.LookPath("objcopy")
	if err1 != nil || err2 != nil {
		t.Skip("binutils (as, objcopy) not installed")
	}
	src, err := os.ReadFile("kernels_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`// vpdpbusd ymm(\d+), ymm(\d+), ymm(\d+) \(VEX[^\n]*\n#define DP_Y\d+ ((?:BYTE \$0x[0-9a-f]+;? ?)+)`)
	ms := re.FindAllStringSubmatch(string(src), -1)
	if len(ms) != 12 {
		t.Fatalf("found %d DP_Y macros, want 12", len(ms))
	}
	var text strings.Builder
	var want []byte
	for _, m := range ms {
		// AT&T order: sources first, destination last.
		text.WriteString("{vex} vpdpbusd %ymm" + m[3] + ", %ymm" + m[2] + ", %ymm" + m[1] + "\n")
		for _, b := range regexp.MustCompile(`0x[0-9a-f]+`).FindAllString(m[4], -1) {
			v, _ := strconv.ParseUint(b[2:], 16, 8)
			want = append(want, byte(v))
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.s"), []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(as, "-o", filepath.Join(dir, "x.o"), filepath.Join(dir, "x.s")).CombinedOutput(); err != nil {
		t.Skipf("as cannot assemble AVX-VNNI (binutils too old?): %v %s", err, out)
	}
	if out, err := exec.Command(objcopy, "-O", "binary", "-j", ".text", filepath.Join(dir, "x.o"), filepath.Join(dir, "x.bin")).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v %s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "x.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("GNU as encodes\n% x\nkernels_amd64.s has\n% x", got, want)
	}
}
