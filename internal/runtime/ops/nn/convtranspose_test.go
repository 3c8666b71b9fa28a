package nn

import (
	"math"
	"math/rand"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// naiveConvTranspose scatters every input element times its kernel into the
// output (the definition of the transposed convolution), in float64.
func naiveConvTranspose(x, w, b *tensor.Tensor, group int, g *geom) []float64 {
	N, C := x.Shape[0], x.Shape[1]
	mg := w.Shape[1]
	M := mg * group
	cg := C / group
	nd := g.nd
	out := make([]float64, N*M*g.outSize)
	for n := 0; n < N; n++ {
		for m := 0; m < M; m++ {
			for o := 0; o < g.outSize; o++ {
				if b != nil {
					out[(n*M+m)*g.outSize+o] = float64(b.F32()[m])
				}
			}
		}
	}
	xs, ws, os := tensor.Strides(x.Shape), tensor.Strides(w.Shape), tensor.Strides(g.out)
	ii := make([]int, nd)
	ki := make([]int, nd)
	for n := 0; n < N; n++ {
		for c := 0; c < C; c++ {
			grp := c / cg
			for i := 0; i < g.inSize; i++ {
				r := i
				for d := nd - 1; d >= 0; d-- {
					ii[d] = r % g.in[d]
					r /= g.in[d]
				}
				xv := float64(x.F32()[n*xs[0]+c*xs[1]+i])
				for k := 0; k < g.kSize; k++ {
					r := k
					for d := nd - 1; d >= 0; d-- {
						ki[d] = r % g.k[d]
						r /= g.k[d]
					}
					oo, ok := 0, true
					for d := 0; d < nd; d++ {
						od := ii[d]*g.stride[d] - g.padBegin[d] + ki[d]*g.dil[d]
						if od < 0 || od >= g.out[d] {
							ok = false
							break
						}
						oo += od * os[d]
					}
					if !ok {
						continue
					}
					for m := 0; m < mg; m++ {
						wv := float64(w.F32()[c*ws[0]+m*ws[1]+k])
						out[(n*M+grp*mg+m)*g.outSize+oo] += xv * wv
					}
				}
			}
		}
	}
	return out
}

func TestConvTransposeAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	cases := []struct {
		x, w  []int
		group int
		attrs []*graph.Attribute
	}{
		{[]int{1, 4, 5, 6}, []int{4, 3, 3, 3}, 2, []*graph.Attribute{intsAttr("strides", 2, 3), intsAttr("pads", 1, 0, 2, 1), intsAttr("dilations", 2, 1), intsAttr("output_padding", 1, 2)}},
		{[]int{2, 3, 7}, []int{3, 2, 4}, 1, []*graph.Attribute{intsAttr("strides", 3), intsAttr("output_shape", 23)}},
		{[]int{1, 2, 3, 4, 3}, []int{2, 1, 2, 3, 2}, 2, []*graph.Attribute{intsAttr("strides", 1, 2, 2), strAttr("auto_pad", "SAME_UPPER")}},
		{[]int{1, 6, 4, 4}, []int{6, 1, 3, 3}, 6, []*graph.Attribute{intsAttr("strides", 2, 2), strAttr("auto_pad", "SAME_LOWER")}},
	}
	for i, c := range cases {
		for _, constW := range []bool{true, false} {
			x, w, b := randTensor(r, c.x...), randTensor(r, c.w...), randTensor(r, c.w[1]*c.group)
			n := &graph.Node{OpType: "ConvTranspose", Inputs: []*graph.Value{{Name: "x"}, {Name: "w"}, {Name: "b"}}, Outputs: []*graph.Value{{Name: "y"}}}
			n.Attrs = append([]*graph.Attribute{intAttr("group", int64(c.group))}, c.attrs...)
			if constW {
				n.Inputs[1].Const = w
			}
			k, err := newConvTranspose(n, 13)
			if err != nil {
				t.Fatal(err)
			}
			ct := k.(*convTranspose)
			g, err := ct.geometry(x.Shape[2:], w.Shape[2:])
			if err != nil {
				t.Fatal(err)
			}
			want := naiveConvTranspose(x, w, b, c.group, g)
			var first []float32
			for _, threads := range []int{1, 3} {
				out, err := k.Run(&runtime.Context{Threads: threads}, []*tensor.Tensor{x, w, b})
				if err != nil {
					t.Fatal(err)
				}
				y := out[0].F32()
				if len(y) != len(want) {
					t.Fatalf("case %d: %d outputs, want %d", i, len(y), len(want))
				}
				for j, v := range want {
					if d := math.Abs(float64(y[j]) - v); d > 1e-4*(1+math.Abs(v)) {
						t.Fatalf("case %d const=%v: [%d] = %v, want %v", i, constW, j, y[j], v)
					}
				}
				if first == nil {
					first = y
				} else {
					for j := range y {
						if math.Float32bits(y[j]) != math.Float32bits(first[j]) {
							t.Fatalf("case %d: thread counts disagree at %d", i, j)
						}
					}
				}
			}
		}
	}
}
