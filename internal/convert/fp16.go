package convert

import (
	"fmt"
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// fp16Min is the smallest initializer (in elements) worth storing as
// float16: small constants (Clip bounds, Resize scales, LayerNorm epsilons)
// stay exact.
const fp16Min = 16

// fp16Max is float16's largest finite value.
const fp16Max = 65504

// Float16 stores g's float32 weights as float16, each read through a Cast
// back to float32, so the file halves and every runtime computes in float32
// as before. Initializers with values beyond float16's range, or fewer than
// 16 elements, stay float32 (and are listed in the report).
func Float16(g *graph.Graph) (*Report, error) {
	rep := newReport()
	nm := g.NewNamer()
	var keep []*graph.Value
	var casts []*graph.Node
	for _, v := range g.Initializers {
		t := v.Const
		if t == nil || t.DType != tensor.Float32 || t.Len() < fp16Min {
			keep = append(keep, v)
			continue
		}
		if !fitsFP16(t.F32()) {
			rep.Float = append(rep.Float, FloatNode{Node: v.Name, OpType: "initializer", Reason: "values beyond float16's range"})
			keep = append(keep, v)
			continue
		}
		h, err := tensor.ToFloat16(t)
		if err != nil {
			return nil, fmt.Errorf("initializer %q: %v", v.Name, err)
		}
		hv := &graph.Value{Name: nm.Name(v.Name + "_fp16"), DType: tensor.Float16, Shape: v.Shape, Const: h}
		keep = append(keep, hv)
		// v keeps its name and readers; it becomes the Cast's output.
		v.Const = nil
		casts = append(casts, &graph.Node{Name: nm.Name(v.Name + "_Cast"), OpType: "Cast", Inputs: []*graph.Value{hv}, Outputs: []*graph.Value{v},
			Attrs: []*graph.Attribute{graph.IntAttr("to", int64(tensor.Float32))}})
		rep.Quantized["weights (float16)"]++
	}
	g.Initializers = keep
	g.Nodes = append(casts, g.Nodes...)
	// A cast weight is no longer an initializer that the file may also
	// list as a graph input (IR < 4 style).
	var ii []string
	for _, name := range g.InitializerInputs {
		for _, v := range keep {
			if v.Name == name {
				ii = append(ii, name)
				break
			}
		}
	}
	g.InitializerInputs = ii
	return rep, nil
}

func fitsFP16(x []float32) bool {
	for _, f := range x {
		if math.IsNaN(float64(f)) || math.Abs(float64(f)) > fp16Max {
			return false
		}
	}
	return true
}
