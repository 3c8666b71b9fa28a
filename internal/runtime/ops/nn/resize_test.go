package nn

import (
	"math"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// TestResizeKeepsPlanes needs no peer: whatever the coordinate mode and
// rounding, resizing only H and W must never mix (n, c) planes. Every
// value of plane p lies within 100 of 1000·p, so a sample taken from
// another plane is far off (the bug this guards against: with
// tf_half_pixel_for_nn and ceil, unscaled N and C mapped o to o+1).
func TestResizeKeepsPlanes(t *testing.T) {
	shape := []int{2, 11, 3, 4}
	x := make([]float32, 2*11*3*4)
	for i := range x {
		x[i] = float32(i/12*1000 + i%12)
	}
	xt := tensor.FromFloat32(shape, x)
	for _, coord := range resizeCoordModes {
		for _, mode := range []string{"nearest", "linear", "cubic"} {
			nmodes := []string{""}
			if mode == "nearest" {
				nmodes = []string{"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}
			}
			for _, nmode := range nmodes {
				for _, sc := range [][]float32{{1, 1, 1.5, 0.5}, {1, 1, 2, 3}, {1, 1, 0.7, 1}} {
					attrs := []*graph.Attribute{graph.StringAttr("mode", mode), graph.StringAttr("coordinate_transformation_mode", coord)}
					if nmode != "" {
						attrs = append(attrs, graph.StringAttr("nearest_mode", nmode))
					}
					n := &graph.Node{OpType: "Resize", Attrs: attrs,
						Inputs:  []*graph.Value{{Name: "x"}, {Name: "roi"}, {Name: "scales"}},
						Outputs: []*graph.Value{{Name: "y"}}}
					k, err := newResize(n, 19)
					if err != nil {
						t.Fatal(err)
					}
					roi := tensor.FromFloat32([]int{8}, []float32{0, 0, 0.1, 0.2, 1, 1, 0.9, 0.8})
					out, err := k.Run(&runtime.Context{Threads: 2}, []*tensor.Tensor{xt, roi, tensor.FromFloat32([]int{4}, sc)})
					if err != nil {
						t.Fatal(err)
					}
					y := out[0]
					plane := y.Shape[2] * y.Shape[3]
					for i, v := range y.F32() {
						p := i / plane
						// tf_crop_and_resize may extrapolate (0).
						if math.Abs(float64(v)-float64(1000*p)) > 100 && !(coord == "tf_crop_and_resize" && v == 0) {
							t.Errorf("%s %s %s scales %v: output plane %d holds %v (plane %d's)", mode, coord, nmode, sc, p, v, int(v+500)/1000)
							break
						}
					}
				}
			}
		}
	}
}
