package nn

import (
	"fmt"
	"math"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// TestGridSampleTorchGoldens checks GridSample against PyTorch 1.13's
// grid_sample (testdata/gen_gridsample.py): 2-D nearest/bilinear/bicubic and
// 3-D nearest/trilinear, every padding mode, both align_corners.
func TestGridSampleTorchGoldens(t *testing.T) {
	a, err := npy.ReadNPZFile("testdata/gridsample.npz")
	if err != nil {
		t.Fatal(err)
	}
	modes := []string{"nearest", "linear", "cubic"}
	pads := []string{"zeros", "border", "reflection"}
	cases := 0
	for i := 0; ; i++ {
		x, ok := a.Arrays[fmt.Sprintf("x_%d", i)]
		if !ok {
			break
		}
		cases++
		grid, want, attrs := a.Arrays[fmt.Sprintf("grid_%d", i)], a.Arrays[fmt.Sprintf("y_%d", i)], a.Arrays[fmt.Sprintf("attrs_%d", i)].I64()
		n := &graph.Node{OpType: "GridSample", Outputs: []*graph.Value{{}}, Attrs: []*graph.Attribute{
			strAttr("mode", modes[attrs[0]]), strAttr("padding_mode", pads[attrs[1]]), intAttr("align_corners", attrs[2])}}
		k, err := newGridSample(n, 20)
		if err != nil {
			t.Fatal(err)
		}
		out, err := k.Run(&runtime.Context{Threads: 2}, []*tensor.Tensor{x, grid})
		if err != nil {
			t.Fatal(err)
		}
		if !tensor.SameShape(out[0].Shape, want.Shape) {
			t.Fatalf("case %d: shape %v, want %v", i, out[0].Shape, want.Shape)
		}
		for j, w := range want.F32() {
			if g := out[0].F32()[j]; math.Abs(float64(g-w)) > 1e-5+1e-4*math.Abs(float64(w)) {
				t.Fatalf("case %d (%s, %s, align_corners=%d, rank %d): [%d] = %v, want %v", i, modes[attrs[0]], pads[attrs[1]], attrs[2], x.Rank(), j, g, w)
			}
		}
	}
	if cases != 30 {
		t.Fatalf("%d cases, want 30", cases)
	}
}
