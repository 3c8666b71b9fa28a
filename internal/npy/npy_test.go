package npy

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/tensor"
)

// The files in testdata were written by NumPy (tools/golden/npy_files.py);
// each holds np.arange(24) % 100 (or % 2 for bool) reshaped to (2, 3, 4).
func TestReadNumPyFiles(t *testing.T) {
	for _, dt := range []string{"float32", "float64", "float16", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "bool"} {
		t.Run(dt, func(t *testing.T) {
			x, err := ReadFile(filepath.Join("testdata", "arange_"+dt+".npy"))
			if err != nil {
				t.Fatal(err)
			}
			if x.DType.String() != dt {
				t.Fatalf("dtype %v, want %s", x.DType, dt)
			}
			if !tensor.SameShape(x.Shape, []int{2, 3, 4}) {
				t.Fatalf("shape %v", x.Shape)
			}
			v, err := x.AsFloat64()
			if err != nil {
				t.Fatal(err)
			}
			mod := 100.0
			if dt == "bool" {
				mod = 2
			}
			for i, got := range v {
				if want := float64(i % int(mod)); got != want {
					t.Fatalf("element %d = %v, want %v", i, got, want)
				}
			}
			// Our writer must produce a file that reads back identically.
			var buf bytes.Buffer
			if err := Write(&buf, x); err != nil {
				t.Fatal(err)
			}
			y, err := Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil {
				t.Fatal(err)
			}
			a, _ := Encode(x)
			b, _ := Encode(y)
			if !bytes.Equal(a, b) || !tensor.SameShape(x.Shape, y.Shape) {
				t.Fatal("round trip changed the array")
			}
		})
	}
}

func TestReadShapes(t *testing.T) {
	s, err := ReadFile("testdata/scalar_float32.npy")
	if err != nil || len(s.Shape) != 0 || s.F32()[0] != 7.5 {
		t.Fatalf("scalar: %v %v", s, err)
	}
	e, err := ReadFile("testdata/empty_float32.npy")
	if err != nil || !tensor.SameShape(e.Shape, []int{0, 3}) || e.Len() != 0 {
		t.Fatalf("empty: %v %v", e, err)
	}
	v, err := ReadFile("testdata/vector_float32.npy")
	if err != nil || !tensor.SameShape(v.Shape, []int{5}) || v.F32()[4] != 4 {
		t.Fatalf("vector: %v %v", v, err)
	}
}

func TestReadNPZ(t *testing.T) {
	for _, f := range []string{"stored.npz", "compressed.npz"} {
		a, err := ReadNPZFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Names) != 2 || a.Arrays["x"].F32()[5] != 5 || a.Arrays["y"].I64()[3] != 3 {
			t.Fatalf("%s: %v", f, a.Names)
		}
	}
	// A real file from the ONNX model zoo.
	p := "../../../shared/models/mnist-onnxzoo-cntk-2018/test_data_0.npz"
	if _, err := os.Stat(p); err == nil {
		a, err := ReadNPZFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Names) == 0 {
			t.Fatal("no arrays")
		}
	}
}

func TestWriteNPZRoundTrip(t *testing.T) {
	x := tensor.FromFloat32([]int{2}, []float32{1, 2})
	var buf bytes.Buffer
	if err := WriteNPZ(&buf, []string{"x"}, map[string]*tensor.Tensor{"x": x}); err != nil {
		t.Fatal(err)
	}
	a, err := ReadNPZ(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil || a.Arrays["x"].F32()[1] != 2 {
		t.Fatal(err)
	}
}

func header(dict string) []byte {
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	b.WriteByte(byte(len(dict)))
	b.WriteByte(byte(len(dict) >> 8))
	b.WriteString(dict)
	return b.Bytes()
}

func TestMalformed(t *testing.T) {
	good := "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a .npy"},
		{"bad magic", []byte("\x93NUMPX\x01\x00\x00\x00"), "bad magic"},
		{"version", []byte("\x93NUMPY\x09\x00\x00\x00"), "version"},
		{"truncated header", []byte("\x93NUMPY\x01\x00\xff\x00{'descr'"), "truncated"},
		{"truncated data", append(header(good), 1, 2, 3), "truncated"},
		{"huge shape", header("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }"), "bad .npy shape"},
		{"negative dim", header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"), "bad dimension"},
		{"object dtype", header("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }"), "unsupported .npy dtype"},
		{"structured", header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }"), "malformed"},
		{"big endian", header("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }"), "big-endian"},
		{"fortran", header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }"), "Fortran"},
		{"not dict", header("descr"), "not a dict"},
		{"missing key", header("{'descr': '<f4', 'shape': (2,), }"), "needs descr"},
		{"unknown key", header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}"), "unknown key"},
		{"bad bool", append(header("{'descr': '|b1', 'fortran_order': False, 'shape': (1,), }"), 7), "bool"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(c.data), int64(len(c.data)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
	for _, f := range []string{"bigendian_float32.npy", "fortran_float32.npy"} {
		if _, err := ReadFile(filepath.Join("testdata", f)); err == nil {
			t.Errorf("%s: want an error", f)
		}
	}
}

func FuzzRead(f *testing.F) {
	for _, p := range []string{"testdata/arange_float32.npy", "testdata/arange_bool.npy", "testdata/scalar_float32.npy"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := Read(bytes.NewReader(b), int64(len(b)))
		if err == nil {
			if err := x.Validate(); err != nil {
				t.Fatal(err)
			}
		}
		_, _ = ReadNPZ(bytes.NewReader(b), int64(len(b)))
	})
}
