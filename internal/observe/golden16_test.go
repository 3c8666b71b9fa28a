package observe

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"github.com/qtool/qtool/internal/tensor"
)

// TestObservers16MatchTorch checks quint16/qint16 qparams against
// tools/golden/torch_observers16.py: PyTorch 1.13's observers with the
// 16-bit quant_min/quant_max (and dst_nbins = 65536 for the histogram
// search, see the script).
func TestObservers16MatchTorch(t *testing.T) {
	seqs := loadSeqs(t)
	var g struct {
		Cases []struct {
			Kind   Kind            `json:"kind"`
			Config json.RawMessage `json:"config"`
			Seq    string          `json:"seq"`
			Steps  [][2][]float64  `json:"steps"`
		} `json:"cases"`
	}
	readJSON(t, "observers16.json", &g)
	var worst float64
	total, exact := 0, 0
	kinds := map[Kind]int{}
	dts := map[tensor.DType]int{}
	for _, c := range g.Cases {
		var cfg Config
		if err := json.Unmarshal(c.Config, &cfg); err != nil {
			t.Fatalf("config %s: %v", c.Config, err)
		}
		name := fmt.Sprintf("%s %s %s", c.Kind, c.Config, c.Seq)
		obs, err := New(c.Kind, cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(c.Steps) != len(seqs[c.Seq]) || len(c.Steps) == 0 {
			t.Fatalf("%s: %d golden steps for %d batches", name, len(c.Steps), len(seqs[c.Seq]))
		}
		for i, b := range seqs[c.Seq] {
			if err := obs.Observe(b.Data, b.Shape); err != nil {
				t.Fatalf("%s step %d: %v", name, i, err)
			}
			s, z, err := obs.QParams()
			if err != nil {
				t.Fatalf("%s step %d: %v", name, i, err)
			}
			ws, wz := float32(c.Steps[i][0][0]), int32(c.Steps[i][1][0])
			rel := math.Abs(float64(s[0])-float64(ws)) / float64(ws)
			worst = max(worst, rel)
			total++
			if s[0] == ws {
				exact++
			}
			// MinMax is bit-exact; the histogram search sums float32
			// errors in torch's order and may differ in the last bit.
			tol := 0.0
			if c.Kind == KindHistogram {
				tol = 1e-6
			}
			if z[0] != wz || rel > tol {
				t.Errorf("%s step %d: scale %v zp %d, torch %v %d (rel %.2g)", name, i, s[0], z[0], ws, wz, rel)
			}
		}
		kinds[c.Kind]++
		dts[cfg.DType]++
	}
	if len(kinds) != 3 || dts[tensor.Uint16] == 0 || dts[tensor.Int16] == 0 || total < 200 {
		t.Fatalf("golden file covers too little: kinds %v dtypes %v, %d steps", kinds, dts, total)
	}
	t.Logf("%d 16-bit qparams: %d scales bit-identical, worst relative error %.3g, zero points identical", total, exact, worst)
}
