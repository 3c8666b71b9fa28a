package npy

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool/qtool/internal/tensor"
)

func TestRowsMatchWholeRead(t *testing.T) {
	data := make([]float32, 5*2*3)
	for i := range data {
		data[i] = float32(i) * 0.5
	}
	whole := tensor.FromFloat32([]int{5, 2, 3}, data)
	path := filepath.Join(t.TempDir(), "a.npy")
	var buf bytes.Buffer
	if err := Write(&buf, whole); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	rf, err := OpenRows(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	if rf.Len() != 5 || !tensor.SameShape(rf.RowShape(), []int{2, 3}) {
		t.Fatalf("len %d row shape %v", rf.Len(), rf.RowShape())
	}
	got, err := rf.Read(1, 4)
	if err != nil {
		t.Fatal(err)
	}
	if !tensor.SameShape(got.Shape, []int{3, 2, 3}) {
		t.Fatalf("shape %v", got.Shape)
	}
	for k, v := range got.F32() {
		if v != data[6+k] {
			t.Fatalf("element %d: %v, want %v", k, v, data[6+k])
		}
	}
	if _, err := rf.Read(4, 6); err == nil {
		t.Fatal("rows past the end: no error")
	}
	// A header promising more rows than the file holds is refused up front.
	raw := buf.Bytes()
	if _, err := NewRows(bytes.NewReader(raw[:len(raw)-4]), int64(len(raw)-4)); err == nil {
		t.Fatal("truncated file: no error")
	}
}
