package nn

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// TestRNNTorchGoldens checks LSTM, GRU (linear_before_reset=1) and RNN
// against PyTorch 1.13 (testdata/gen_rnn.py): bidirectional, layout 1,
// initial states and sequence lengths, which the ONNX node tests cover only
// in part.
func TestRNNTorchGoldens(t *testing.T) {
	files, _ := filepath.Glob("testdata/rnn_*.npz")
	if len(files) == 0 {
		t.Fatal("no goldens")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			a, err := npy.ReadNPZFile(f)
			if err != nil {
				t.Fatal(err)
			}
			arr := a.Arrays
			attrs := arr["attrs"].I64()
			kind := strings.TrimSpace(string(arr["kind"].U8()))
			D, layout, H, lbr := attrs[0], attrs[1], attrs[2], attrs[3]
			n := &graph.Node{OpType: kind, Outputs: []*graph.Value{{Name: "Y"}, {Name: "Yh"}, {Name: "Yc"}}}
			dir := "forward"
			if D == 2 {
				dir = "bidirectional"
			}
			n.Attrs = []*graph.Attribute{
				{Name: "direction", Type: graph.AttrString, S: dir},
				{Name: "hidden_size", Type: graph.AttrInt, I: H},
				{Name: "layout", Type: graph.AttrInt, I: layout},
				{Name: "linear_before_reset", Type: graph.AttrInt, I: lbr},
			}
			if act, ok := arr["act"]; ok && strings.TrimSpace(string(act.U8())) == "relu" {
				n.Attrs = append(n.Attrs, &graph.Attribute{Name: "activations", Type: graph.AttrStrings, Strings: []string{"Relu", "Relu"}})
			}
			in := []*tensor.Tensor{arr["X"], arr["W"], arr["R"], arr["B"], arr["seq"], arr["h0"]}
			if kind == "LSTM" {
				in = append(in, arr["c0"])
			}
			for range in {
				n.Inputs = append(n.Inputs, &graph.Value{})
			}
			f, ok := runtime.Lookup("", kind, tensor.Float32)
			if !ok {
				t.Fatal("not registered")
			}
			k, err := f(n, 14)
			if err != nil {
				t.Fatal(err)
			}
			for _, threads := range []int{1, 2} {
				out, err := k.Run(&runtime.Context{Threads: threads}, in)
				if err != nil {
					t.Fatal(err)
				}
				for i, name := range []string{"Y", "Yh", "Yc"} {
					want, ok := arr[name]
					if !ok {
						continue
					}
					if !tensor.SameShape(out[i].Shape, want.Shape) {
						t.Fatalf("%s shape %v, want %v", name, out[i].Shape, want.Shape)
					}
					for j, w := range want.F32() {
						if g := out[i].F32()[j]; math.Abs(float64(g-w)) > 1e-5+1e-4*math.Abs(float64(w)) {
							t.Fatalf("%s[%d] = %v, want %v", name, j, g, w)
						}
					}
				}
			}
		})
	}
}
