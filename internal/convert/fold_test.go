package convert

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/tensor"
)

// TestFoldQDQ folds qtool's own QDQ output (as it would a QDQ model from
// another tool) into QOperator form without a table: its outputs must equal
// those of the QOperator model converted from the float model with the same
// table, in ONNX Runtime and in our runtime.
func TestFoldQDQ(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	sq := shared(t, "models/squeezenet-cifar10/squeezenet_cifar10.onnx")
	fm, err := model.Load(sq)
	if err != nil {
		t.Fatal(err)
	}
	cx, _ := cifar(t, fm.Graph)
	x, _ := mnist(t)
	for _, c := range []struct {
		name, path  string
		calib, eval *tensor.Tensor
	}{
		{"mnist-8", shared(t, "models/mnist-8/mnist-8.onnx"), rows(x, 0, 64), rows(x, 200, 201)},
		{"squeezenet", sq, rows(cx, 0, 64), rows(cx, 7000, 7032)},
	} {
		t.Run(c.name, func(t *testing.T) {
			calib := filepath.Join(dir, c.name+".npy")
			writeNpy(t, calib, c.calib)
			cfg := loadPreset(t, "x86")
			m := loadFused(t, c.path)
			tab := calibrateGraph(t, m.Graph, calib, cfg, nil, 0, 0)
			if _, err := Static(m.Graph, tab, cfg, StaticOptions{Format: FormatQDQ}); err != nil {
				t.Fatal(err)
			}
			qdq := filepath.Join(dir, c.name+".qdq.onnx")
			if err := model.Save(m, qdq); err != nil {
				t.Fatal(err)
			}
			direct := loadFused(t, c.path)
			rep, err := Static(direct.Graph, tab, cfg, StaticOptions{Format: FormatQOperator})
			if err != nil {
				t.Fatal(err)
			}
			directPath := filepath.Join(dir, c.name+".direct.onnx")
			if err := model.Save(direct, directPath); err != nil {
				t.Fatal(err)
			}
			fm, err := model.Load(qdq)
			if err != nil {
				t.Fatal(err)
			}
			if !IsQDQ(fm.Graph) {
				t.Fatal("IsQDQ is false for a QDQ model")
			}
			frep, err := FoldQDQ(fm.Graph, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for op, n := range rep.Quantized {
				if !strings.HasSuffix(op, "(absorbed)") && frep.Quantized[op] != n {
					t.Errorf("folded %v, direct %v", frep.Quantized, rep.Quantized)
				}
			}
			for _, n := range fm.Graph.Nodes {
				if n.OpType == "Conv" {
					t.Errorf("a float Conv is left after folding: %q", n.Name)
				}
			}
			folded := filepath.Join(dir, c.name+".folded.onnx")
			if err := model.Save(fm, folded); err != nil {
				t.Fatal(err)
			}
			in := map[string]*tensor.Tensor{fm.Graph.Inputs[0].Name: c.eval}
			var names []string
			for _, v := range fm.Graph.Outputs {
				names = append(names, v.Name)
			}
			a, err := runORT(t, folded, in, names)
			if err != nil {
				t.Fatal(err)
			}
			b, err := runORT(t, directPath, in, names)
			if err != nil {
				t.Fatal(err)
			}
			compareOutputs(t, a, b, rep.OutputScales)
			ours, err := tryOurs(folded, in)
			if err != nil {
				t.Fatal(err)
			}
			compareOutputs(t, ours, b, rep.OutputScales)
		})
	}
}
