package nn

import (
	"math"
	"math/rand"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// TestLpPool checks LpPool and GlobalLpPool (no node tests in the suites we
// have) against the definition (Σ|x|^p)^(1/p) over each window.
func TestLpPool(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	x := randTensor(r, 2, 3, 5, 6)
	for _, p := range []int64{1, 2, 3} {
		n := &graph.Node{OpType: "LpPool", Outputs: []*graph.Value{{}}, Attrs: []*graph.Attribute{
			intsAttr("kernel_shape", 2, 3), intsAttr("strides", 2, 1), intsAttr("pads", 1, 0, 0, 1), intAttr("p", p)}}
		f, _ := runtime.Lookup("", "LpPool", tensor.Float32)
		k, err := f(n, 18)
		if err != nil {
			t.Fatal(err)
		}
		out, err := k.Run(&runtime.Context{Threads: 2}, []*tensor.Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		y := out[0]
		if !tensor.SameShape(y.Shape, []int{2, 3, 3, 5}) {
			t.Fatalf("shape %v", y.Shape)
		}
		for pl := 0; pl < 6; pl++ {
			for oh := 0; oh < 3; oh++ {
				for ow := 0; ow < 5; ow++ {
					s := 0.0
					for kh := 0; kh < 2; kh++ {
						for kw := 0; kw < 3; kw++ {
							ih, iw := oh*2-1+kh, ow+kw
							if ih >= 0 && ih < 5 && iw < 6 {
								s += math.Pow(math.Abs(float64(x.F32()[pl*30+ih*6+iw])), float64(p))
							}
						}
					}
					want := math.Pow(s, 1/float64(p))
					if got := float64(y.F32()[pl*15+oh*5+ow]); math.Abs(got-want) > 1e-5*(1+want) {
						t.Fatalf("p=%d [%d,%d,%d] = %v, want %v", p, pl, oh, ow, got, want)
					}
				}
			}
		}
		gn := &graph.Node{OpType: "GlobalLpPool", Outputs: []*graph.Value{{}}, Attrs: []*graph.Attribute{intAttr("p", p)}}
		gf, _ := runtime.Lookup("", "GlobalLpPool", tensor.Float32)
		gk, err := gf(gn, 2)
		if err != nil {
			t.Fatal(err)
		}
		gout, err := gk.Run(&runtime.Context{Threads: 1}, []*tensor.Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		for pl := 0; pl < 6; pl++ {
			s := 0.0
			for _, v := range x.F32()[pl*30 : (pl+1)*30] {
				s += math.Pow(math.Abs(float64(v)), float64(p))
			}
			want := math.Pow(s, 1/float64(p))
			if got := float64(gout[0].F32()[pl]); math.Abs(got-want) > 1e-5*(1+want) {
				t.Fatalf("global p=%d plane %d = %v, want %v", p, pl, got, want)
			}
		}
	}
}
