package runtime_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	_ "github.com/qtool/qtool/internal/runtime/ops/basic"
	"github.com/qtool/qtool/internal/tensor"
)

// A generator fed only by constants (ConstantOfShape of an initializer) is
// evaluated at plan time; the session's own budget applies there too, not
// just the process-wide default.
func TestMaxTensorBytesAtPlanTime(t *testing.T) {
	shape := &graph.Value{Name: "shape", DType: tensor.Int64, Shape: graph.Shape{{Value: 2}}, Const: tensor.FromInt64([]int{2}, []int64{1024, 1024})}
	y := &graph.Value{Name: "y"}
	g := &graph.Graph{
		Initializers: []*graph.Value{shape},
		Nodes:        []*graph.Node{{Name: "gen", OpType: "ConstantOfShape", Inputs: []*graph.Value{shape}, Outputs: []*graph.Value{y}}},
		Outputs:      []*graph.Value{y},
		Opsets:       map[string]int64{"": 17},
	}
	// 1024×1024 float32 = 4 MiB.
	for _, c := range []struct {
		limit int64
		ok    bool
	}{{8 << 20, true}, {1 << 20, false}} {
		s, err := runtime.NewSession(g, runtime.Options{MaxTensorBytes: c.limit})
		if err == nil {
			var out map[string]*tensor.Tensor
			if out, err = s.Run(nil); err == nil && out["y"].Len() != 1<<20 {
				t.Fatalf("limit %d: output of %d elements", c.limit, out["y"].Len())
			}
		}
		if c.ok != (err == nil) {
			t.Fatalf("limit %d: %v, want ok=%v", c.limit, err, c.ok)
		}
		var be *runtime.BudgetError
		if err != nil && (!errors.As(err, &be) || !strings.Contains(err.Error(), "gen")) {
			t.Fatalf("limit %d: %v is not a budget error naming the node", c.limit, err)
		}
	}
}
