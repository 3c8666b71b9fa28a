package calibrate

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// 16-bit activation tables (quint16/qint16, for A16W8): entries say
// uint16/int16 with zero points in that range, survive writing, reading
// and validation, merge like 8-bit ones, and a zero point outside the
// 16-bit range is refused.
func TestTable16(t *testing.T) {
	for _, c := range []struct{ dtype, want, scheme string }{
		{"quint16", "uint16", "per_tensor_affine"}, {"qint16", "int16", "per_tensor_symmetric"}, {"uint16", "uint16", "per_tensor_symmetric"},
	} {
		cfg := Config{Activation: ObserverSpec{DType: c.dtype, QScheme: c.scheme}}
		tab := smallMNIST(t, 10, cfg, "")
		wide := 0
		for _, e := range tab.Tensors {
			if e.Role != "activation" {
				continue
			}
			if e.DType != c.want {
				t.Fatalf("%s: entry %q has dtype %s", c.dtype, e.Name, e.DType)
			}
			z := e.ZeroPoints[0]
			switch {
			case c.want == "uint16" && c.scheme == "per_tensor_symmetric" && z != 32767:
				t.Fatalf("%s symmetric: zero point %d, torch's (0+65535)//2 is 32767", c.dtype, z)
			case c.want == "int16" && c.scheme == "per_tensor_symmetric" && z != 0:
				t.Fatalf("%s symmetric: zero point %d", c.dtype, z)
			}
			if z > 255 || z < -128 || e.Scales[0] < 1e-3 {
				wide++
			}
		}
		if wide == 0 {
			t.Fatalf("%s: no entry shows a 16-bit range", c.dtype)
		}
		b, err := tab.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "t.json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		back, err := ReadTable(p)
		if err != nil {
			t.Fatalf("%s: %v", c.dtype, err)
		}
		if b2, _ := back.Marshal(); !bytes.Equal(b, b2) {
			t.Fatalf("%s: table changed in a write/read round trip", c.dtype)
		}
		m, err := Merge(tab, smallMNIST(t, 10, cfg, ""))
		if err != nil || m.Validate() != nil {
			t.Fatalf("%s: merge: %v %v", c.dtype, err, m.Validate())
		}
		if _, err := Merge(tab, smallMNIST(t, 10, Config{}, "")); err == nil {
			t.Fatalf("%s: merged with an 8-bit table", c.dtype)
		}
		if c.want == "int16" {
			e := back.Tensors[0]
			for i := range back.Tensors {
				if back.Tensors[i].Role == "activation" {
					e = back.Tensors[i]
					break
				}
			}
			e.ZeroPoints[0] = 40000
			if err := back.Validate(); err == nil || !strings.Contains(err.Error(), "zero_point") {
				t.Fatalf("int16 zero point 40000: %v", err)
			}
		}
	}
}
