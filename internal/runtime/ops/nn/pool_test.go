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

// TestMaxPool2d checks 2-D MaxPool (f32.MaxPool2D) against the
// definition, the max over each window's in-input positions, on random
// shapes with strides, asymmetric pads, dilations and ceil_mode, at 1 and 3
// threads.
func TestMaxPool2d(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	f, _ := runtime.Lookup("", "MaxPool", tensor.Float32)
	for it := 0; it < 60; it++ {
		kh, kw := 1+r.Intn(4), 1+r.Intn(4)
		sh, sw := 1+r.Intn(3), 1+r.Intn(3)
		dh, dw := 1+r.Intn(2), 1+r.Intn(2)
		// Pads smaller than the dilated kernel, as ONNX requires.
		pt, pl, pb, pr := r.Intn((kh-1)*dh+1), r.Intn((kw-1)*dw+1), r.Intn((kh-1)*dh+1), r.Intn((kw-1)*dw+1)
		H, W := (kh-1)*dh+1+r.Intn(9), (kw-1)*dw+1+r.Intn(9)
		ceil := int64(r.Intn(2))
		x := randTensor(r, 1+r.Intn(2), 1+r.Intn(3), H, W)
		n := &graph.Node{OpType: "MaxPool", Outputs: []*graph.Value{{}}, Attrs: []*graph.Attribute{
			intsAttr("kernel_shape", int64(kh), int64(kw)), intsAttr("strides", int64(sh), int64(sw)),
			intsAttr("dilations", int64(dh), int64(dw)), intsAttr("pads", int64(pt), int64(pl), int64(pb), int64(pr)),
			intAttr("ceil_mode", ceil)}}
		k, err := f(n, 12)
		if err != nil {
			t.Fatal(err)
		}
		for _, threads := range []int{1, 3} {
			out, err := k.Run(&runtime.Context{Threads: threads}, []*tensor.Tensor{x})
			if err != nil {
				t.Fatal(err)
			}
			y := out[0]
			OH, OW := y.Shape[2], y.Shape[3]
			planes := x.Shape[0] * x.Shape[1]
			for p := 0; p < planes; p++ {
				for oh := 0; oh < OH; oh++ {
					for ow := 0; ow < OW; ow++ {
						want := float32(math.Inf(-1))
						for i := 0; i < kh; i++ {
							for j := 0; j < kw; j++ {
								ih, iw := oh*sh-pt+i*dh, ow*sw-pl+j*dw
								if ih >= 0 && ih < H && iw >= 0 && iw < W {
									want = max(want, x.F32()[(p*H+ih)*W+iw])
								}
							}
						}
						if got := y.F32()[(p*OH+oh)*OW+ow]; got != want {
							t.Fatalf("case %d (k %dx%d s %d,%d d %d,%d pads %d,%d,%d,%d ceil %d, x %v, %d threads) [%d,%d,%d] = %v, want %v",
								it, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, ceil, x.Shape, threads, p, oh, ow, got, want)
						}
					}
				}
			}
		}
	}
}
