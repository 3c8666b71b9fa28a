package convert

import (
	"path/filepath"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// scaleOf returns the scale of the QuantizeLinear that v feeds (QDQ form).
func scaleOf(ix *graph.Index, v *graph.Value) (float32, bool) {
	for _, c := range ix.Consumers[v] {
		if c.OpType == "QuantizeLinear" {
			return c.Inputs[1].Const.F32()[0], true
		}
	}
	return 0, false
}

// TestSqueezeNetQDQStructure checks the rules that make real models hard:
// Relu absorbed, Concat inputs written at the Concat's scale, MaxPool and
// Squeeze passing their input's qparams, per-channel weights behind an
// axis-0 DequantizeLinear with an int32 bias, opset 13 (Squeeze's axes an
// input now), excluded Softmax in float.
func TestSqueezeNetQDQStructure(t *testing.T) {
	path := shared(t, "models/squeezenet-cifar10/squeezenet_cifar10.onnx")
	m := loadFused(t, path)
	cx, _ := cifar(t, m.Graph)
	calib := filepath.Join(t.TempDir(), "c.npy")
	writeNpy(t, calib, rows(cx, 0, 16))
	cfg := loadPreset(t, "x86")
	tab := calibrateGraph(t, m.Graph, calib, cfg, nil, 0, 0)
	rep, err := Static(m.Graph, tab, cfg, StaticOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph
	if g.Opset("") != 13 {
		t.Errorf("opset %d, want 13 for per-axis DequantizeLinear", g.Opset(""))
	}
	if rep.Quantized["Relu (absorbed)"] != 11 {
		t.Errorf("absorbed %d Relu, want 11", rep.Quantized["Relu (absorbed)"])
	}
	ix := g.Index()
	// After QDQ each quantized op reads DequantizeLinear outputs; find the
	// float value behind each by the Q that feeds the DQ.
	qIn := func(n *graph.Node, i int) (float32, bool) {
		dq := ix.Producer[n.Inputs[i]]
		if dq == nil || dq.OpType != "DequantizeLinear" {
			return 0, false
		}
		return dq.Inputs[1].Const.F32()[0], true
	}
	for _, n := range g.Nodes {
		switch n.OpType {
		case "Relu":
			t.Errorf("Relu %q left in the graph", n.Name)
		case "Concat":
			out, ok := scaleOf(ix, n.Outputs[0])
			if !ok {
				t.Fatalf("Concat output not quantized")
			}
			for i := range n.Inputs {
				if s, ok := qIn(n, i); !ok || s != out {
					t.Errorf("Concat %q input %d scale %v, output %v", n.Name, i, s, out)
				}
			}
		case "MaxPool":
			in, ok1 := qIn(n, 0)
			out, ok2 := scaleOf(ix, n.Outputs[0])
			if !ok1 || !ok2 || in != out {
				t.Errorf("%s %q: input scale %v, output %v (want equal, quantized)", n.OpType, n.Name, in, out)
			}
		case "Squeeze":
			// Its input (the float GlobalAveragePool of the x86 preset)
			// is float, so it stays float too.
			if len(n.Inputs) != 2 || n.Inputs[1].Const == nil {
				t.Errorf("Squeeze at opset 13 needs its axes as an input")
			}
		case "Conv":
			w := ix.Producer[n.Inputs[1]]
			b := ix.Producer[n.Inputs[2]]
			if w == nil || w.OpType != "DequantizeLinear" || w.Inputs[0].Const.DType != tensor.Int8 || w.Attr("axis") == nil {
				t.Errorf("Conv %q weight is not a per-axis int8 DequantizeLinear", n.Name)
			}
			if b == nil || b.OpType != "DequantizeLinear" || b.Inputs[0].Const.DType != tensor.Int32 {
				t.Errorf("Conv %q bias is not int32", n.Name)
			}
		case "Softmax":
			if _, ok := scaleOf(ix, n.Outputs[0]); ok {
				t.Errorf("excluded Softmax is quantized")
			}
		}
	}
}

// TestSqueezeNetQOperatorStructure: the same model as integer operators.
func TestSqueezeNetQOperatorStructure(t *testing.T) {
	path := shared(t, "models/squeezenet-cifar10/squeezenet_cifar10.onnx")
	m := loadFused(t, path)
	cx, _ := cifar(t, m.Graph)
	calib := filepath.Join(t.TempDir(), "c.npy")
	writeNpy(t, calib, rows(cx, 0, 16))
	cfg := loadPreset(t, "x86")
	tab := calibrateGraph(t, m.Graph, calib, cfg, nil, 0, 0)
	if _, err := Static(m.Graph, tab, cfg, StaticOptions{Format: FormatQOperator}); err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, n := range m.Graph.Nodes {
		ops[n.Domain+":"+n.OpType]++
	}
	want := map[string]int{":QLinearConv": 11, "com.microsoft:QLinearConcat": 3, ":MaxPool": 1, ":QuantizeLinear": 1, ":DequantizeLinear": 1, ":Conv": 0, ":Relu": 0}
	for k, v := range want {
		if ops[k] != v {
			t.Errorf("%s: %d nodes, want %d (all: %v)", k, ops[k], v, ops)
		}
	}
	if m.Graph.Opset("") < 12 || m.Graph.Opset(MSDomain) != 1 {
		t.Errorf("opsets %v", m.Graph.Opsets)
	}
}
