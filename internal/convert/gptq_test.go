package convert

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

type gptqGolden struct {
	Cases []struct {
		Name       string    `json:"name"`
		Rows       int       `json:"rows"`
		KK         int       `json:"k"`
		PerChannel bool      `json:"per_channel"`
		ActOrder   bool      `json:"act_order"`
		XS         []float64 `json:"x"`
		WS         []float64 `json:"w"`
		Scales     []float64 `json:"scales"`
		Q          []int     `json:"q"`
		RTNErr     float64   `json:"rtn_err"`
		GPTQErr    float64   `json:"gptq_err"`
	} `json:"cases"`
	Conv   convGolden `json:"conv"`
	Conv3d convGolden `json:"conv3d"`
}

// convGolden is a convolution's input and torch's H of its patches.
type convGolden struct {
	X         []float64   `json:"x"`
	Shape     []int       `json:"shape"`
	Groups    int         `json:"groups"`
	Kernel    []int       `json:"kernel"`
	Strides   []int64     `json:"strides"`
	Dilations []int64     `json:"dilations"`
	Pads      []int64     `json:"pads"`
	H         [][]float64 `json:"h"`
}

func readGPTQGolden(t *testing.T) *gptqGolden {
	b, err := os.ReadFile(filepath.Join("testdata", "gptq_golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g gptqGolden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return &g
}

func f32s(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

// TestGPTQGolden: the integers GPTQ picks for a layer, against the paper's
// algorithm run by PyTorch (tools/golden/gptq_ref.py) on the same H, with
// torch's observers for the scales.
func TestGPTQGolden(t *testing.T) {
	g := readGPTQGolden(t)
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			rows, k := len(c.Scales), c.KK
			w := tensor.FromFloat32([]int{rows, k}, f32s(c.WS))
			wv := &graph.Value{Name: "w", DType: tensor.Float32, Const: w}
			n := &graph.Node{Name: "fc", OpType: "Gemm", Inputs: []*graph.Value{{Name: "x"}, wv}, Outputs: []*graph.Value{{Name: "y"}},
				Attrs: []*graph.Attribute{graph.IntAttr("transB", 1)}}
			gr := &graph.Graph{Nodes: []*graph.Node{n}, Initializers: []*graph.Value{wv}}
			l, reason := newLayerH(gr.Index(), n, 4096)
			if l == nil {
				t.Fatal(reason)
			}
			// H straight in float64, as the reference has it (accumulate's
			// float32 products are tested below).
			x := c.XS
			m := len(x) / k
			for i := 0; i < k; i++ {
				for j := 0; j < k; j++ {
					var s float64
					for r := 0; r < m; r++ {
						s += float64(float32(x[r*k+i])) * float64(float32(x[r*k+j]))
					}
					l.h[0][i*k+j] = s
				}
			}
			spec := WeightSpec{DType: "qint8", Granularity: "per_tensor", Scheme: "symmetric"}
			if c.PerChannel {
				spec.Granularity = "per_channel"
			}
			qw, err := l.round(w, spec, 0.01, c.ActOrder)
			if err != nil {
				t.Fatal(err)
			}
			for r := 0; r < rows; r++ {
				s := qw.scales[0]
				if len(qw.scales) > 1 {
					s = qw.scales[r]
				}
				if s != float32(c.Scales[r]) {
					t.Fatalf("row %d: scale %g, torch %g", r, s, c.Scales[r])
				}
			}
			q := qw.data.I8()
			diff := 0
			for i, want := range c.Q {
				if int(q[i]) != want {
					diff++
					if d := int(q[i]) - want; d > 1 || d < -1 {
						t.Errorf("weight %d: %d, reference %d", i, q[i], want)
					}
				}
			}
			// Both sides are float64, but not in the same operation order:
			// an error feedback landing on .5 may round the other way.
			if diff > len(c.Q)/200 {
				t.Errorf("%d of %d weights differ from the reference", diff, len(c.Q))
			}
			// And the point of it: the layer's output error on its inputs.
			var e float64
			for r := 0; r < m; r++ {
				for o := 0; o < rows; o++ {
					s := float64(qw.scales[0])
					if len(qw.scales) > 1 {
						s = float64(qw.scales[o])
					}
					var d float64
					for j := 0; j < k; j++ {
						d += float64(float32(x[r*k+j])) * (float64(float32(c.WS[o*k+j])) - float64(q[o*k+j])*s)
					}
					e += d * d
				}
			}
			t.Logf("%d/%d weights differ from torch; output error %.4g (torch GPTQ %.4g, round-to-nearest %.4g)", diff, len(c.Q), e, c.GPTQErr, c.RTNErr)
			if math.Abs(e-c.GPTQErr) > 0.02*c.GPTQErr+1e-9 || e >= c.RTNErr {
				t.Errorf("output error %g, want torch's %g (< round-to-nearest %g)", e, c.GPTQErr, c.RTNErr)
			}
		})
	}
}

// TestGPTQMatMulLayout: a MatMul stores its weight as K × N (rows of the
// GPTQ problem are columns); rounding it must give the golden integers
// transposed.
func TestGPTQMatMulLayout(t *testing.T) {
	for _, c := range readGPTQGolden(t).Cases {
		if !c.PerChannel || c.ActOrder {
			continue
		}
		rows, k := len(c.Scales), c.KK
		wt := make([]float32, rows*k)
		for r := 0; r < rows; r++ {
			for j := 0; j < k; j++ {
				wt[j*rows+r] = float32(c.WS[r*k+j])
			}
		}
		w := tensor.FromFloat32([]int{k, rows}, wt)
		wv := &graph.Value{Name: "w", DType: tensor.Float32, Const: w}
		n := &graph.Node{Name: "mm", OpType: "MatMul", Inputs: []*graph.Value{{Name: "x"}, wv}, Outputs: []*graph.Value{{Name: "y"}}}
		gr := &graph.Graph{Nodes: []*graph.Node{n}, Initializers: []*graph.Value{wv}}
		l, reason := newLayerH(gr.Index(), n, 4096)
		if l == nil {
			t.Fatal(reason)
		}
		x := tensor.FromFloat32([]int{len(c.XS) / k, k}, f32s(c.XS))
		if err := l.accumulate(x); err != nil {
			t.Fatal(err)
		}
		qw, err := l.round(w, WeightSpec{DType: "qint8", Granularity: "per_channel", Scheme: "symmetric"}, 0.01, false)
		if err != nil {
			t.Fatal(err)
		}
		diff := 0
		for r := 0; r < rows; r++ {
			for j := 0; j < k; j++ {
				if int(qw.data.I8()[j*rows+r]) != c.Q[r*k+j] {
					diff++
				}
			}
		}
		// H here comes through float32 products (accumulate), not float64:
		// an error feedback near .5 may round the other way.
		if diff > len(c.Q)/100 {
			t.Errorf("%s: %d of %d MatMul weights differ from the reference", c.Name, diff, len(c.Q))
		}
	}
}

// TestGPTQConvStatistics: H of a grouped, strided, dilated convolution with
// asymmetric pads against torch's unfold.
func TestGPTQConvStatistics(t *testing.T) {
	gold := readGPTQGolden(t)
	for name, c := range map[string]convGolden{"2-D": gold.Conv, "3-D": gold.Conv3d} {
		t.Run(name, func(t *testing.T) {
			if len(c.Kernel) == 0 {
				t.Fatal("golden case missing: regenerate with tools/golden/gptq_ref.py")
			}
			cin := c.Shape[1] / c.Groups
			ws := append([]int{c.Groups, cin}, c.Kernel...)
			n := 1
			for _, d := range ws {
				n *= d
			}
			wv := &graph.Value{Name: "w", DType: tensor.Float32, Const: tensor.FromFloat32(ws, make([]float32, n))}
			node := &graph.Node{Name: "conv", OpType: "Conv", Inputs: []*graph.Value{{Name: "x"}, wv}, Outputs: []*graph.Value{{Name: "y"}},
				Attrs: []*graph.Attribute{graph.IntAttr("group", int64(c.Groups)), graph.IntsAttr("strides", c.Strides),
					graph.IntsAttr("dilations", c.Dilations), graph.IntsAttr("pads", c.Pads)}}
			gr := &graph.Graph{Nodes: []*graph.Node{node}, Initializers: []*graph.Value{wv}}
			l, reason := newLayerH(gr.Index(), node, 4096)
			if l == nil {
				t.Fatal(reason)
			}
			if err := l.accumulate(tensor.FromFloat32(c.Shape, f32s(c.X))); err != nil {
				t.Fatal(err)
			}
			for g := range c.H {
				var scale float64
				for _, v := range c.H[g] {
					scale = math.Max(scale, math.Abs(v))
				}
				for i, want := range c.H[g] {
					if got := l.h[g][i]; math.Abs(got-want) > 1e-5*scale {
						t.Fatalf("group %d H[%d] = %g, torch %g", g, i, got, want)
					}
				}
			}
			// A wrong input is an error, not a panic: wrong channel
			// count, and a rank that does not match the kernel's.
			bad := append([]int{1, 3}, c.Shape[2:]...)
			nb, _ := tensor.NumElements(bad)
			if err := l.accumulate(tensor.FromFloat32(bad, make([]float32, nb))); err == nil {
				t.Error("accumulate took an input with the wrong channel count")
			}
			if err := l.accumulate(tensor.FromFloat32([]int{1, c.Shape[1], 4}, make([]float32, 4*c.Shape[1]))); err == nil {
				t.Error("accumulate took a 1-D input")
			}
		})
	}
}

// TestOptimizeWeightsSelects: only the layers asking for gptq are rounded,
// and what cannot be is reported; no data is an error.
func TestOptimizeWeightsSelects(t *testing.T) {
	m := loadFused(t, shared(t, "models/mnist-8/mnist-8.onnx"))
	cfg := Default()
	cfg.Weight.Rounding = "nearest"
	if _, err := OptimizeWeights(context.Background(), m.Graph, nil, cfg, RoundingOptions{}); err == nil {
		t.Error("no samples: want an error")
	}
	x, _ := mnist(t)
	batches := []map[string]*tensor.Tensor{{m.Graph.Inputs[0].Name: rows(x, 0, 1)}}
	wr, err := OptimizeWeights(context.Background(), m.Graph, batches, cfg, RoundingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(wr.Layers) != 0 {
		t.Errorf("rounding nearest: %d layers rounded by GPTQ", len(wr.Layers))
	}
	cfg.Weight.Rounding = "gptq"
	wr, err = OptimizeWeights(context.Background(), m.Graph, batches, cfg, RoundingOptions{MaxK: 100})
	if err != nil {
		t.Fatal(err)
	}
	// mnist-8: Conv 1→8 5×5 (K 25), Conv 8→16 5×5 (K 200, above 100), and
	// the final MatMul (K 256).
	if len(wr.Layers) != 1 || len(wr.Skipped) != 2 {
		t.Errorf("rounded %v, skipped %v; want 1 and 2", wr.Layers, wr.Skipped)
	}
	// Non-finite layer inputs: that layer rounds to nearest, with the
	// reason, and the call still succeeds.
	nan := rows(x, 0, 1)
	nan.F32()[0] = float32(math.NaN())
	wr, err = OptimizeWeights(context.Background(), m.Graph, []map[string]*tensor.Tensor{{m.Graph.Inputs[0].Name: nan}}, cfg, RoundingOptions{})
	if err != nil {
		t.Fatalf("NaN input: %v", err)
	}
	if len(wr.Skipped) == 0 {
		t.Error("NaN input: no layer reported as rounded to nearest")
	}
	if err := (Config{Weight: WeightSpec{Rounding: "stochastic"}}).Weight.validate(""); err == nil {
		t.Error("weight.rounding stochastic: want an error")
	}
}
