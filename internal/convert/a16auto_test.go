package convert

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/tensor"
)

// TestSelectA16: on mnist-8 the chosen promotions never lower the output
// SQNR below the all-8-bit model, the returned config and table convert,
// and the model they give is what Final scores; bad arguments are errors.
func TestSelectA16(t *testing.T) {
	path := shared(t, "models/mnist-8/mnist-8.onnx")
	m := loadFused(t, path)
	fb, err := model.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	clone := model.GraphCloner(fb)
	x, _ := mnist(t)
	calib := filepath.Join(t.TempDir(), "calib.npy")
	writeNpy(t, calib, rows(x, 0, 200))
	cfg := Default()
	cfg.Weight.Rounding = "nearest"
	tab8 := calibrateGraph(t, m.Graph, calib, cfg, nil, 0, 0)
	tab16 := calibrateGraph(t, m.Graph, calib, A16CalibrationConfig(cfg), nil, 0, 0)
	in := m.Graph.Inputs[0].Name
	var samples []map[string]*tensor.Tensor
	for i := 0; i < 32; i++ {
		samples = append(samples, map[string]*tensor.Tensor{in: rows(x, i, i+1)})
	}
	res, err := SelectA16(context.Background(), clone, tab8, tab16, cfg, samples, A16Options{N: 2, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Ranked) != 3 {
		t.Errorf("ranked %d candidates, want mnist-8's 3 weighted nodes", len(res.Ranked))
	}
	if !(res.Final >= res.Base) || len(res.Chosen) == 0 || len(res.Chosen) > 2 {
		t.Fatalf("base %.2f dB, final %.2f dB, chosen %v", res.Base, res.Final, res.Chosen)
	}
	// Converting with what it returned scores Final.
	g, _ := clone()
	if _, err := Static(g, res.Table, res.Config, StaticOptions{}); err != nil {
		t.Fatal(err)
	}
	f, _ := clone()
	ref, err := runOutputs(f, samples, 2)
	if err != nil {
		t.Fatal(err)
	}
	q, err := runOutputs(g, samples, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := sqnr(ref, q); got != res.Final {
		t.Errorf("the returned config scores %.4f dB, SelectA16 said %.4f", got, res.Final)
	}
	t.Logf("base %.2f dB, final %.2f dB, chosen %v", res.Base, res.Final, res.Chosen)
	for _, bad := range []A16Options{{N: 0}, {N: 1, DType: "quint8"}} {
		if _, err := SelectA16(context.Background(), clone, tab8, tab16, cfg, samples, bad); err == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
	if _, err := SelectA16(context.Background(), clone, tab8, tab16, cfg, nil, A16Options{N: 1}); err == nil {
		t.Error("no samples: want an error")
	}
}
