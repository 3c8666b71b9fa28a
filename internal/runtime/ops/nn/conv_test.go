package nn

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// naiveConv is the textbook definition of ONNX Conv in float64, an
// independent reference for the im2col, pointwise and depthwise paths.
func naiveConv(x, w, b *tensor.Tensor, group int, g *geom) []float64 {
	N, C := x.Shape[0], x.Shape[1]
	M := w.Shape[0]
	cg, mg := C/group, M/group
	nd := g.nd
	out := make([]float64, N*M*g.outSize)
	xs, ws := tensor.Strides(x.Shape), tensor.Strides(w.Shape)
	oi := make([]int, nd)
	ki := make([]int, nd)
	for n := 0; n < N; n++ {
		for m := 0; m < M; m++ {
			grp := m / mg
			for o := 0; o < g.outSize; o++ {
				r := o
				for d := nd - 1; d >= 0; d-- {
					oi[d] = r % g.out[d]
					r /= g.out[d]
				}
				s := 0.0
				if b != nil {
					s = float64(b.F32()[m])
				}
				for c := 0; c < cg; c++ {
					for k := 0; k < g.kSize; k++ {
						r := k
						for d := nd - 1; d >= 0; d-- {
							ki[d] = r % g.k[d]
							r /= g.k[d]
						}
						xo := n*xs[0] + (grp*cg+c)*xs[1]
						wo := m*ws[0] + c*ws[1]
						ok := true
						for d := 0; d < nd; d++ {
							i := oi[d]*g.stride[d] - g.padBegin[d] + ki[d]*g.dil[d]
							if i < 0 || i >= g.in[d] {
								ok = false
								break
							}
							xo += i * xs[2+d]
							wo += ki[d] * ws[2+d]
						}
						if ok {
							s += float64(x.F32()[xo]) * float64(w.F32()[wo])
						}
					}
				}
				out[(n*M+m)*g.outSize+o] = s
			}
		}
	}
	return out
}

func randTensor(r *rand.Rand, shape ...int) *tensor.Tensor {
	t := tensor.MustNew(tensor.Float32, shape)
	for i := range t.F32() {
		t.F32()[i] = float32(r.NormFloat64())
	}
	return t
}

func intsAttr(name string, v ...int64) *graph.Attribute {
	return &graph.Attribute{Name: name, Type: graph.AttrInts, Ints: v}
}

// TestConvAgainstNaive covers shapes the node tests do not: depthwise with
// the assembly's block widths and borders, strides 1 and 2, dilation,
// channel multipliers, groups, 1-D and 3-D, pointwise, several threads, and
// constant (prepacked) and runtime weights.
func TestConvAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	type tc struct {
		x, w          []int
		group         int
		strides, pads []int64
		dil           []int64
	}
	cases := []tc{
		{x: []int{1, 4, 9, 37}, w: []int{4, 1, 3, 3}, group: 4, strides: []int64{1, 1}, pads: []int64{1, 1, 1, 1}},
		{x: []int{2, 3, 17, 40}, w: []int{3, 1, 3, 3}, group: 3, strides: []int64{2, 2}, pads: []int64{1, 1, 1, 1}},
		{x: []int{1, 3, 16, 33}, w: []int{3, 1, 3, 3}, group: 3, strides: []int64{2, 2}, pads: []int64{0, 1, 1, 0}},
		{x: []int{1, 2, 20, 26}, w: []int{2, 1, 3, 3}, group: 2, strides: []int64{2, 2}, pads: []int64{0, 0, 0, 0}},
		{x: []int{1, 2, 12, 50}, w: []int{6, 1, 3, 3}, group: 2, strides: []int64{1, 1}, pads: []int64{2, 2, 2, 2}, dil: []int64{2, 2}},
		{x: []int{1, 3, 11, 29}, w: []int{3, 1, 5, 5}, group: 3, strides: []int64{1, 1}, pads: []int64{2, 2, 2, 2}},
		{x: []int{1, 3, 11, 29}, w: []int{3, 1, 3, 3}, group: 3, strides: []int64{3, 1}, pads: []int64{1, 1, 1, 1}},
		{x: []int{1, 8, 7, 7}, w: []int{16, 8, 1, 1}, group: 1},
		{x: []int{2, 8, 13, 11}, w: []int{12, 4, 3, 3}, group: 2, strides: []int64{2, 1}, pads: []int64{1, 0, 1, 2}},
		{x: []int{1, 5, 31}, w: []int{7, 5, 4}, group: 1, strides: []int64{2}, pads: []int64{3, 1}, dil: []int64{2}},
		{x: []int{1, 4, 5, 6, 7}, w: []int{6, 2, 2, 3, 3}, group: 2, strides: []int64{1, 2, 1}, pads: []int64{1, 0, 1, 0, 1, 1}},
		{x: []int{1, 3, 40, 40}, w: []int{70, 3, 7, 7}, group: 1, strides: []int64{2, 2}, pads: []int64{3, 3, 3, 3}},
		// Stride 1, wide rows: the padded-grid path (asymmetric pads,
		// dilation, groups, no padding at all).
		{x: []int{2, 5, 10, 40}, w: []int{6, 5, 3, 3}, group: 1, strides: []int64{1, 1}, pads: []int64{1, 2, 0, 1}},
		{x: []int{1, 4, 12, 45}, w: []int{8, 2, 3, 3}, group: 2, strides: []int64{1, 1}, pads: []int64{2, 2, 2, 2}, dil: []int64{2, 2}},
		{x: []int{1, 3, 9, 60}, w: []int{5, 3, 2, 4}, group: 1},
		{x: []int{1, 16, 20, 24}, w: []int{32, 16, 3, 3}, group: 1, pads: []int64{1, 1, 1, 1}},
		// Strided, on the phase planes of the padded grid: a ResNet stem,
		// a downsampling 3x3 and 1x1, odd sizes, dilation, stride 3.
		{x: []int{1, 3, 38, 80}, w: []int{8, 3, 7, 7}, group: 1, strides: []int64{2, 2}, pads: []int64{3, 3, 3, 3}},
		{x: []int{2, 6, 17, 33}, w: []int{4, 6, 3, 3}, group: 1, strides: []int64{2, 2}, pads: []int64{1, 1, 1, 1}},
		{x: []int{1, 6, 16, 32}, w: []int{5, 6, 1, 1}, group: 1, strides: []int64{2, 2}},
		// Stride 2 with dilation and odd pads on convGroupRows' column
		// phases.
		{x: []int{1, 3, 12, 70}, w: []int{4, 3, 3, 3}, group: 1, strides: []int64{2, 2}, pads: []int64{2, 1, 2, 2}, dil: []int64{2, 2}},
		{x: []int{1, 2, 9, 67}, w: []int{3, 2, 4, 5}, group: 1, strides: []int64{1, 2}, pads: []int64{1, 3, 2, 0}},
		{x: []int{1, 4, 15, 61}, w: []int{6, 2, 3, 3}, group: 2, strides: []int64{2, 3}, pads: []int64{0, 2, 1, 1}, dil: []int64{2, 3}},
		// Small maps with deep sums: 3x3, strided, grouped and pointwise.
		{x: []int{1, 64, 7, 7}, w: []int{64, 64, 3, 3}, group: 1, pads: []int64{1, 1, 1, 1}},
		{x: []int{1, 64, 13, 13}, w: []int{32, 64, 3, 3}, group: 1, strides: []int64{2, 2}, pads: []int64{1, 1, 1, 1}},
		{x: []int{2, 128, 5, 5}, w: []int{64, 64, 3, 3}, group: 2, pads: []int64{1, 1, 1, 1}},
		{x: []int{1, 520, 7, 7}, w: []int{96, 520, 1, 1}, group: 1},
	}
	for i, c := range cases {
		for _, constW := range []bool{true, false} {
			// A tiny im2col budget forces column tiles (and tiles of single
			// output rows in 2-D) on every case.
			for _, colBudget := range []int{maxColFloats, 100, -1} {
				// -1: the default budget on convGroupPadded's phase planes
				// instead of convGroupRows.
				useRowTiles = colBudget >= 0
				colBudget = max(colBudget, maxColFloats)
				name := fmt.Sprintf("case%d/const=%v/col=%d/rows=%v", i, constW, colBudget, useRowTiles)
				saved := maxColFloats
				maxColFloats = colBudget
				x := randTensor(r, c.x...)
				w := randTensor(r, c.w...)
				b := randTensor(r, c.w[0])
				n := &graph.Node{OpType: "Conv", Inputs: []*graph.Value{{Name: "x"}, {Name: "w"}, {Name: "b"}}, Outputs: []*graph.Value{{Name: "y"}}}
				n.Attrs = append(n.Attrs, &graph.Attribute{Name: "group", Type: graph.AttrInt, I: int64(c.group)})
				if c.strides != nil {
					n.Attrs = append(n.Attrs, intsAttr("strides", c.strides...))
				}
				if c.pads != nil {
					n.Attrs = append(n.Attrs, intsAttr("pads", c.pads...))
				}
				if c.dil != nil {
					n.Attrs = append(n.Attrs, intsAttr("dilations", c.dil...))
				}
				if constW {
					n.Inputs[1].Const = w
				}
				k, err := newConv(n, false)
				if err != nil {
					t.Fatal(err)
				}
				var ys [][]float32
				for _, threads := range []int{1, 2, 3} {
					out, err := k.Run(&runtime.Context{Threads: threads}, []*tensor.Tensor{x, w, b})
					if err != nil {
						t.Fatal(name, err)
					}
					ys = append(ys, out[0].F32())
				}
				maxColFloats = saved
				useRowTiles = true
				g, _ := k.attrs.resolve(n, x.Shape[2:], w.Shape[2:], false)
				want := naiveConv(x, w, b, c.group, g)
				for j, v := range want {
					if d := math.Abs(float64(ys[0][j]) - v); d > 1e-4*(1+math.Abs(v)) {
						t.Fatalf("%s: [%d] = %v, want %v", name, j, ys[0][j], v)
					}
				}
				for _, y := range ys[1:] {
					for j := range y {
						if math.Float32bits(y[j]) != math.Float32bits(ys[0][j]) {
							t.Fatalf("%s: thread counts disagree at %d", name, j)
						}
					}
				}
			}
		}
	}
}

func benchDW(b *testing.B, c, h, stride int) {
	r := rand.New(rand.NewSource(1))
	x := randTensor(r, 1, c, h, h)
	w := randTensor(r, c, 1, 3, 3)
	n := &graph.Node{OpType: "Conv", Inputs: []*graph.Value{{Name: "x"}, {Name: "w", Const: w}}, Outputs: []*graph.Value{{Name: "y"}}}
	n.Attrs = []*graph.Attribute{{Name: "group", Type: graph.AttrInt, I: int64(c)},
		intsAttr("strides", int64(stride), int64(stride)), intsAttr("pads", 1, 1, 1, 1)}
	k, err := newConv(n, false)
	if err != nil {
		b.Fatal(err)
	}
	ctx := &runtime.Context{Threads: 1}
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := k.Run(ctx, []*tensor.Tensor{x, w}); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0)
	out := (h+2-3)/stride + 1
	b.ReportMetric(float64(c*out*out*9)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
}

// BenchmarkDepthwise times MobileNetV2's depthwise shapes.
func BenchmarkDepthwise(b *testing.B) {
	for _, c := range []struct{ c, h, s int }{{144, 56, 1}, {96, 112, 2}, {576, 14, 1}} {
		b.Run(fmt.Sprintf("c%d_h%d_s%d", c.c, c.h, c.s), func(b *testing.B) { benchDW(b, c.c, c.h, c.s) })
	}
}

func benchConv(b *testing.B, c, m, h, k, stride int) {
	r := rand.New(rand.NewSource(1))
	x := randTensor(r, 1, c, h, h)
	w := randTensor(r, m, c, k, k)
	n := &graph.Node{OpType: "Conv", Inputs: []*graph.Value{{Name: "x"}, {Name: "w", Const: w}}, Outputs: []*graph.Value{{Name: "y"}}}
	p := int64(k / 2)
	n.Attrs = []*graph.Attribute{intsAttr("strides", int64(stride), int64(stride)), intsAttr("pads", p, p, p, p)}
	kern, err := newConv(n, false)
	if err != nil {
		b.Fatal(err)
	}
	ctx := &runtime.Context{Threads: 1}
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := kern.Run(ctx, []*tensor.Tensor{x, w}); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0)
	out := (h+2*int(p)-k)/stride + 1
	b.ReportMetric(2*float64(m*c*k*k*out*out)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
}

// BenchmarkPointwise times MobileNetV2's 1x1 convolutions (no im2col).
func BenchmarkPointwise(b *testing.B) {
	for _, c := range []struct{ c, m, h int }{{16, 96, 112}, {96, 24, 56}, {24, 144, 56}, {144, 32, 28}, {384, 64, 14}, {320, 1280, 7}} {
		b.Run(fmt.Sprintf("c%d_m%d_h%d", c.c, c.m, c.h), func(b *testing.B) { benchConv(b, c.c, c.m, c.h, 1, 1) })
	}
}

// BenchmarkPaddedGrid compares the padded-grid path of stride-1 3x3 convs
// with plain im2col on ResNet-18's shapes, interleaved in one run.
func BenchmarkPaddedGrid(b *testing.B) {
	for _, c := range []struct{ c, m, h, k, s int }{{64, 64, 56, 3, 1}, {128, 128, 28, 3, 1}, {3, 64, 224, 7, 2}, {3, 32, 224, 3, 2}, {64, 128, 56, 3, 2}, {64, 128, 56, 1, 2}} {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("c%d_h%d_k%d_s%d_padded=%v", c.c, c.h, c.k, c.s, on), func(b *testing.B) {
				saved := usePaddedGrid
				usePaddedGrid = on
				defer func() { usePaddedGrid = saved }()
				benchConv(b, c.c, c.m, c.h, c.k, c.s)
			})
		}
		b.Run(fmt.Sprintf("c%d_h%d_k%d_s%d_phases", c.c, c.h, c.k, c.s), func(b *testing.B) {
			saved := useRowTiles
			useRowTiles = false
			defer func() { useRowTiles = saved }()
			benchConv(b, c.c, c.m, c.h, c.k, c.s)
		})
	}
}

// BenchmarkSmallPlane compares im2colSmall with im2col2d on ResNet-18's
// 7x7 layers (and a stride-2 one into them), interleaved in one run.
func BenchmarkSmallPlane(b *testing.B) {
	for _, c := range []struct{ c, m, h, k, s int }{{512, 512, 7, 3, 1}, {256, 512, 14, 3, 2}} {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("c%d_h%d_k%d_s%d_small=%v", c.c, c.h, c.k, c.s, on), func(b *testing.B) {
				saved := useSmallPlane
				useSmallPlane = on
				defer func() { useSmallPlane = saved }()
				benchConv(b, c.c, c.m, c.h, c.k, c.s)
			})
		}
	}
}

func BenchmarkConv(b *testing.B) {
	for _, c := range []struct{ c, m, h, k, s int }{{64, 64, 56, 3, 1}, {3, 64, 224, 7, 2}, {128, 128, 28, 3, 1}, {256, 256, 14, 3, 1}} {
		for _, tile := range []int{4 << 20, 1 << 18, 1 << 17, 1 << 16} {
			b.Run(fmt.Sprintf("c%d_m%d_h%d_k%d_s%d_col%d", c.c, c.m, c.h, c.k, c.s, tile), func(b *testing.B) {
				saved := maxColFloats
				maxColFloats = tile
				defer func() { maxColFloats = saved }()
				benchConv(b, c.c, c.m, c.h, c.k, c.s)
			})
		}
	}
}

// TestFusedConv checks com.qtool FusedConv (residual Z and activation in the
// epilogue) against the naive conv followed by the plain formulas.
func TestFusedConv(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	acts := []struct {
		name   string
		params []float32
		f      func(float64) float64
	}{
		{"Relu", nil, func(v float64) float64 { return math.Max(v, 0) }},
		{"Clip", []float32{-0.5, 1.5}, func(v float64) float64 { return math.Min(math.Max(v, -0.5), 1.5) }},
		{"LeakyRelu", []float32{0.2}, func(v float64) float64 {
			if v < 0 {
				return 0.2 * v
			}
			return v
		}},
		{"", nil, func(v float64) float64 { return v }},
	}
	shapes := []struct {
		x, w  []int
		group int
	}{
		{[]int{1, 8, 9, 10}, []int{8, 1, 3, 3}, 8},
		{[]int{2, 6, 7, 7}, []int{4, 3, 3, 3}, 2},
		{[]int{1, 16, 5, 6}, []int{8, 16, 1, 1}, 1},
		{[]int{1, 5, 6, 30}, []int{7, 5, 3, 3}, 1},   // padded-grid path
		{[]int{1, 64, 7, 7}, []int{32, 64, 3, 3}, 1}, // small plane
	}
	for _, sh := range shapes {
		for _, a := range acts {
			for _, withZ := range []bool{false, true} {
				x, w, b := randTensor(r, sh.x...), randTensor(r, sh.w...), randTensor(r, sh.w[0])
				n := &graph.Node{OpType: "FusedConv", Domain: QtoolDomain, Inputs: []*graph.Value{{Name: "x"}, {Name: "w", Const: w}, {Name: "b"}, {Name: "z"}}}
				n.Attrs = []*graph.Attribute{{Name: "group", Type: graph.AttrInt, I: int64(sh.group)}, intsAttr("pads", 1, 1, 1, 1)}
				if sh.w[2] == 1 {
					n.Attrs = n.Attrs[:1]
				}
				if a.name != "" {
					n.Attrs = append(n.Attrs, &graph.Attribute{Name: "activation", Type: graph.AttrString, S: a.name})
				}
				if a.params != nil {
					n.Attrs = append(n.Attrs, &graph.Attribute{Name: "activation_params", Type: graph.AttrFloats, Floats: a.params})
				}
				dom := QtoolDomain
				if withZ {
					dom = MSDomain
				}
				f, ok := runtime.Lookup(dom, "FusedConv", tensor.Float32)
				if !ok {
					t.Fatal("FusedConv not registered")
				}
				k, err := f(n, 1)
				if err != nil {
					t.Fatal(err)
				}
				kc := k.(*conv)
				g, err := kc.attrs.resolve(n, x.Shape[2:], w.Shape[2:], false)
				if err != nil {
					t.Fatal(err)
				}
				ref := naiveConv(x, w, b, sh.group, g)
				in := []*tensor.Tensor{x, w, b, nil}
				var z *tensor.Tensor
				if withZ {
					z = randTensor(r, append([]int{sh.x[0], sh.w[0]}, g.out...)...)
					in[3] = z
				}
				out, err := k.Run(&runtime.Context{Threads: 2}, in)
				if err != nil {
					t.Fatal(err)
				}
				for i, v := range ref {
					if z != nil {
						v += float64(z.F32()[i])
					}
					v = a.f(v)
					if d := math.Abs(float64(out[0].F32()[i]) - v); d > 1e-4*(1+math.Abs(v)) {
						t.Fatalf("%v %s z=%v: [%d] = %v, want %v", sh.w, a.name, withZ, i, out[0].F32()[i], v)
					}
				}
			}
		}
	}
}
