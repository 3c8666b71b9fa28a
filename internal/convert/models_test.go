package convert

import (
	"path/filepath"
	"testing"

	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/tensor"
)

// TestMNISTStaticPeers converts mnist-8 in both forms and checks that ONNX
// Runtime loads each output and agrees with our runtime within 1 LSB.
func TestMNISTStaticPeers(t *testing.T) {
	x, _ := mnist(t)
	dir := t.TempDir()
	calib := filepath.Join(dir, "calib.npy")
	writeNpy(t, calib, rows(x, 0, 200))
	for _, format := range []string{FormatQDQ, FormatQOperator} {
		t.Run(format, func(t *testing.T) {
			cfg := Default()
			m := loadFused(t, shared(t, "models/mnist-8/mnist-8.onnx"))
			tab := calibrateGraph(t, m.Graph, calib, cfg, nil, 0, 0)
			rep, err := Static(m.Graph, tab, cfg, StaticOptions{Format: format})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("quantized %v float %v scales %v", rep.Quantized, rep.Float, rep.OutputScales)
			out := filepath.Join(dir, format+".onnx")
			if err := model.Save(m, out); err != nil {
				t.Fatal(err)
			}
			in := map[string]*tensor.Tensor{m.Graph.Inputs[0].Name: rows(x, 500, 501)}
			oname := m.Graph.Outputs[0].Name
			ours := runOurs(t, out, in)
			ort, err := runORT(t, out, in, []string{oname})
			if err != nil {
				t.Fatal(err)
			}
			frac, worst := lsbAgreement(ours[oname], ort[oname], rep.OutputScales[oname])
			t.Logf("agree %.4f worst %.2f LSB: %v vs %v", frac, worst, ours[oname].F32()[:4], ort[oname].F32()[:4])
		})
	}
}
