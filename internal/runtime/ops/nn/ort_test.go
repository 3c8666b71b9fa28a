package nn

import (
	"path/filepath"
	"testing"

	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/ortpeer"
	"github.com/qtool/qtool/internal/tensor"
)

// runORT runs m in ONNX Runtime with the given inputs and returns every
// graph output; it skips t when ONNX Runtime, the reference these tests
// compare with, is not installed.
func runORT(t testing.TB, m *model.Model, in map[string]*tensor.Tensor) map[string]*tensor.Tensor {
	t.Helper()
	ortpeer.Need(t)
	mp := filepath.Join(t.TempDir(), "model.onnx")
	if err := model.Save(m, mp); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range m.Graph.Outputs {
		names = append(names, v.Name)
	}
	out, err := ortpeer.Run(t, mp, in, names, "")
	if err != nil {
		t.Fatal(err)
	}
	return out
}
