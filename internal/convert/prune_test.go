package convert

import (
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// An IR < 4 model lists its initializers as graph inputs too; after
// conversion the float weights nothing reads must go, the used ones stay.
func TestPruneUnusedInitializerInputs(t *testing.T) {
	x := &graph.Value{Name: "x", DType: tensor.Float32, Shape: graph.KnownShape(2)}
	w := &graph.Value{Name: "w", DType: tensor.Float32, Const: tensor.FromFloat32([]int{2}, []float32{1, 2})}
	old := &graph.Value{Name: "old", DType: tensor.Float32, Const: tensor.FromFloat32([]int{2}, []float32{3, 4})}
	y := &graph.Value{Name: "y"}
	g := &graph.Graph{
		Opsets:            map[string]int64{"": 13},
		Inputs:            []*graph.Value{x},
		Outputs:           []*graph.Value{y},
		Initializers:      []*graph.Value{w, old},
		InitializerInputs: []string{"w", "old"},
		Nodes:             []*graph.Node{{OpType: "Add", Inputs: []*graph.Value{x, w}, Outputs: []*graph.Value{y}}},
	}
	pruneUnused(g)
	if len(g.Initializers) != 1 || g.Initializers[0] != w {
		t.Fatalf("initializers %v", g.Initializers)
	}
	if len(g.InitializerInputs) != 1 || g.InitializerInputs[0] != "w" {
		t.Fatalf("initializer inputs %v", g.InitializerInputs)
	}
}
