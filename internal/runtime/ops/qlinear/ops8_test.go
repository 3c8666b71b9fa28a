package qlinear

import (
	"math/rand"
	"reflect"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	_ "github.com/qtool/qtool/internal/runtime/ops/nn" // the float Resize and norms
	"github.com/qtool/qtool/internal/tensor"
)

// TestBadInputs8 is TestBadInputs for LookupTable, Resize8 and the
// QLinear normalizations: malformed inputs and attributes give an error,
// never a panic.
func TestBadInputs8(t *testing.T) {
	attrInt := func(name string, v int64) *graph.Attribute { return graph.IntAttr(name, v) }
	q := func(x *tensor.Tensor) []*tensor.Tensor {
		return []*tensor.Tensor{x, scal(0.1), u8T(nil, 3), scal(0.1), u8T(nil, 4)}
	}
	ch := func(n int) *tensor.Tensor { return f32T([]int{n}) }
	type tc struct {
		name, op string
		attrs    []*graph.Attribute
		in       []*tensor.Tensor
	}
	cases := []tc{
		{"table short", "LookupTable", nil, []*tensor.Tensor{u8T([]int{2, 3}), u8T([]int{255})}},
		{"table dtype", "LookupTable", nil, []*tensor.Tensor{u8T([]int{2, 3}), i8T([]int{256})}},
		{"table missing", "LookupTable", nil, []*tensor.Tensor{u8T([]int{2, 3}), nil}},
		{"table x float", "LookupTable", nil, []*tensor.Tensor{f32T([]int{2, 3}), u8T([]int{256})}},
		{"resize8 opset", "Resize8", []*graph.Attribute{attrInt("onnx_opset", 10)}, []*tensor.Tensor{u8T([]int{1, 1, 2, 2}), nil, tensor.FromFloat32([]int{4}, []float32{1, 1, 2, 2})}},
		{"resize8 crop", "Resize8", []*graph.Attribute{graph.StringAttr("coordinate_transformation_mode", "tf_crop_and_resize")}, []*tensor.Tensor{u8T([]int{1, 1, 2, 2}), nil, tensor.FromFloat32([]int{4}, []float32{1, 1, 2, 2})}},
		{"resize8 scales length", "Resize8", []*graph.Attribute{graph.StringAttr("mode", "linear")}, []*tensor.Tensor{u8T([]int{1, 1, 2, 2}), nil, tensor.FromFloat32([]int{3}, []float32{1, 2, 2})}},
		{"bn params", "QLinearBatchNormalization", nil, append(q(u8T([]int{1, 3, 2, 2})), ch(3), ch(3), ch(2), ch(3))},
		{"bn rank", "QLinearBatchNormalization", nil, append(q(u8T([]int{3})), ch(3), ch(3), ch(3), ch(3))},
		{"bn training", "QLinearBatchNormalization", []*graph.Attribute{attrInt("training_mode", 1)}, append(q(u8T([]int{1, 3, 2, 2})), ch(3), ch(3), ch(3), ch(3))},
		{"bn param int", "QLinearBatchNormalization", nil, append(q(u8T([]int{1, 3, 2, 2})), ch(3), ch(3), ch(3), u8T([]int{3}))},
		{"in scale", "QLinearInstanceNormalization", nil, append(q(u8T([]int{1, 3, 2, 2})), ch(2), ch(3))},
		{"in y zero point dtype", "QLinearInstanceNormalization", nil, []*tensor.Tensor{u8T([]int{1, 3, 2, 2}), scal(0.1), u8T(nil), scal(0.1), i8T(nil), ch(3), ch(3)}},
		{"in per-channel x scale", "QLinearInstanceNormalization", nil, []*tensor.Tensor{u8T([]int{1, 3, 2, 2}), f32T([]int{3}), u8T(nil), scal(0.1), u8T(nil), ch(3), ch(3)}},
		{"in zero scale", "QLinearInstanceNormalization", nil, []*tensor.Tensor{u8T([]int{1, 3, 2, 2}), scal(0), u8T(nil), scal(0.1), u8T(nil), ch(3), ch(3)}},
		{"gn groups", "QLinearGroupNormalization", []*graph.Attribute{attrInt("num_groups", 2)}, append(q(u8T([]int{1, 3, 2, 2})), ch(3), ch(3))},
		{"gn groups 0", "QLinearGroupNormalization", []*graph.Attribute{attrInt("num_groups", 0)}, append(q(u8T([]int{1, 4, 2, 2})), ch(4), ch(4))},
		{"gn opset 21 per group", "QLinearGroupNormalization", []*graph.Attribute{attrInt("num_groups", 2), attrInt("onnx_opset", 21)}, append(q(u8T([]int{1, 4, 2, 2})), ch(2), ch(2))},
		{"ln axis", "QLinearLayerNormalization", []*graph.Attribute{attrInt("axis", 4)}, append(q(u8T([]int{1, 3, 2, 2})), ch(2))},
		{"ln scale shape", "QLinearLayerNormalization", nil, append(q(u8T([]int{1, 3, 2, 2})), ch(3))},
		{"ln bias shape", "QLinearLayerNormalization", nil, append(q(u8T([]int{1, 3, 2, 2})), ch(2), ch(3))},
		{"ln inputs", "QLinearLayerNormalization", nil, q(u8T([]int{1, 3, 2, 2}))},
	}
	for _, c := range cases {
		n := &graph.Node{OpType: c.op, Domain: QtoolDomain, Attrs: c.attrs, Outputs: []*graph.Value{{Name: "y"}}}
		for _, t := range c.in {
			v := &graph.Value{Name: "in"}
			if t == nil {
				v = nil
			}
			n.Inputs = append(n.Inputs, v)
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: panic %v", c.name, r)
				}
			}()
			f, ok := runtime.Lookup(QtoolDomain, c.op, tensor.Uint8)
			if !ok {
				t.Fatalf("%s not registered", c.op)
			}
			k, err := f(n, 1)
			if err != nil {
				return
			}
			if _, err := k.Run(&runtime.Context{Threads: 2}, c.in); err == nil {
				t.Errorf("%s: no error", c.name)
			}
		}()
	}
}

// TestQLinearNormsMatchFloat compares every QLinear normalization with the
// float kernel of ops/nn on the dequantized input, quantized by ONNX's rule
// (the unfused path), on shapes that take the direct and the table paths
// (planes shorter and longer than 256, one and several images), uint8 and
// int8.
func TestQLinearNormsMatchFloat(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	randF := func(n int, base, spread float64) *tensor.Tensor {
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(base + spread*rng.NormFloat64())
		}
		return tensor.FromFloat32([]int{n}, d)
	}
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		for _, shape := range [][]int{{2, 4, 3, 5}, {1, 4, 17, 19}, {3, 4, 20, 20}} {
			C := shape[1]
			x := tensor.MustNew(dt, shape)
			for i := range bytesOf(x) {
				bytesOf(x)[i] = uint8(rng.Intn(256))
			}
			xs, xz, ys, yz := float32(0.04), int32(120), float32(0.03), int32(130)
			zpT := func(v int32) *tensor.Tensor {
				if dt == tensor.Int8 {
					return &tensor.Tensor{DType: dt, Shape: []int{}, Data: []int8{int8(v)}}
				}
				return u8T(nil, uint8(v))
			}
			if dt == tensor.Int8 {
				xz, yz = xz-128, yz-128
			}
			cases := []struct {
				op     string
				attrs  []*graph.Attribute
				params []*tensor.Tensor
			}{
				{"BatchNormalization", nil, []*tensor.Tensor{randF(C, 1, 0.3), randF(C, 0, 0.2), randF(C, 0, 0.5), randF(C, 1, 0.2)}},
				{"InstanceNormalization", nil, []*tensor.Tensor{randF(C, 1, 0.3), randF(C, 0, 0.2)}},
				{"GroupNormalization", []*graph.Attribute{graph.IntAttr("num_groups", 2)}, []*tensor.Tensor{randF(C, 1, 0.3), randF(C, 0, 0.2)}},
				{"LayerNormalization", []*graph.Attribute{graph.IntAttr("axis", 2)}, []*tensor.Tensor{randF(shape[2]*shape[3], 1, 0.3), randF(shape[3], 0, 0.2)}},
			}
			for _, c := range cases {
				if c.op == "LayerNormalization" {
					c.params[0].Shape = []int{shape[2], shape[3]}
				}
				// The float path.
				xf := make([]float32, x.Len())
				tensor.DequantizeLinearInto(xf, x, 0, xs, xz)
				fn := &graph.Node{OpType: c.op, Attrs: c.attrs, Outputs: []*graph.Value{{Name: "y"}}}
				fin := append([]*tensor.Tensor{tensor.FromFloat32(shape, xf)}, c.params...)
				for range fin {
					fn.Inputs = append(fn.Inputs, &graph.Value{Name: "in"})
				}
				ff, _ := runtime.Lookup("", c.op, tensor.Float32)
				fk, err := ff(fn, 21)
				if err != nil {
					t.Fatal(err)
				}
				fo, err := fk.Run(&runtime.Context{Threads: 1}, fin)
				if err != nil {
					t.Fatal(err)
				}
				want := tensor.MustNew(dt, shape)
				tensor.QuantizeInto(want, 0, fo[0].F32(), ys, yz, tensor.RuleONNX)
				// The integer kernel.
				qn := &graph.Node{OpType: "QLinear" + c.op, Domain: QtoolDomain, Attrs: c.attrs, Outputs: []*graph.Value{{Name: "y"}}}
				qin := append([]*tensor.Tensor{x, scal(xs), zpT(xz), scal(ys), zpT(yz)}, c.params...)
				for range qin {
					qn.Inputs = append(qn.Inputs, &graph.Value{Name: "in"})
				}
				qf, _ := runtime.Lookup(QtoolDomain, "QLinear"+c.op, dt)
				qk, err := qf(qn, 1)
				if err != nil {
					t.Fatal(err)
				}
				got, err := qk.Run(&runtime.Context{Threads: 2}, qin)
				if err != nil {
					t.Fatal(err)
				}
				g, w := bytesOf(got[0]), bytesOf(want)
				diff, maxd := 0, 0
				for i := range g {
					d := int(g[i]) - int(w[i])
					if dt == tensor.Int8 {
						d = int(int8(g[i])) - int(int8(w[i]))
					}
					if d != 0 {
						diff++
						maxd = max(maxd, d, -d)
					}
				}
				if maxd > 1 || float64(diff) > 0.001*float64(len(g)) {
					t.Errorf("%v %s %v: %d of %d differ from the float path, max %d", dt, c.op, shape, diff, len(g), maxd)
				}
				if !reflect.DeepEqual(got[0].Shape, shape) {
					t.Errorf("%v %s: shape %v", dt, c.op, got[0].Shape)
				}
			}
		}
	}
}

// TestTableBinaryMatchesMicrosoft checks com.qtool QLinearAdd/QLinearMul
// bit for bit against the com.microsoft kernels (whose arithmetic is ONNX
// Runtime's) on shapes that take the table path (one operand a single
// element over runs of 512 or more, either side) and shapes that do not.
func TestTableBinaryMatchesMicrosoft(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	shapes := [][2][]int{
		{{2, 16, 24, 24}, {2, 16, 1, 1}},
		{{2, 16, 1, 1}, {2, 16, 24, 24}},
		{{1, 3, 40, 40}, {1}},
		{{2, 16, 8, 8}, {2, 16, 1, 1}}, // runs of 64: Mul's scalar loop, Add's plain path
		{{2, 16, 1, 1}, {2, 16, 7, 7}},
		{{2, 0, 8, 8}, {2, 0, 1, 1}},
		{{2, 16, 24, 24}, {2, 16, 24, 24}},
	}
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		for _, op := range []string{"QLinearAdd", "QLinearMul"} {
			for _, sh := range shapes {
				mk := func(shape []int) *tensor.Tensor {
					x := tensor.MustNew(dt, shape)
					for i := range bytesOf(x) {
						bytesOf(x)[i] = uint8(rng.Intn(256))
					}
					return x
				}
				zp := func(v int) *tensor.Tensor {
					if dt == tensor.Int8 {
						return &tensor.Tensor{DType: dt, Shape: []int{}, Data: []int8{int8(v - 128)}}
					}
					return u8T(nil, uint8(v))
				}
				// The second C scale saturates most products.
				for _, cs := range []float32{0.05, 0.0003} {
					in := []*tensor.Tensor{mk(sh[0]), scal(0.031), zp(117), mk(sh[1]), scal(0.0123), zp(140), scal(cs), zp(121)}
					run := func(domain string) *tensor.Tensor {
						n := &graph.Node{OpType: op, Domain: domain, Outputs: []*graph.Value{{Name: "y"}}}
						for range in {
							n.Inputs = append(n.Inputs, &graph.Value{Name: "in"})
						}
						f, _ := runtime.Lookup(domain, op, dt)
						k, err := f(n, 1)
						if err != nil {
							t.Fatal(err)
						}
						out, err := k.Run(&runtime.Context{Threads: 2}, in)
						if err != nil {
							t.Fatal(err)
						}
						return out[0]
					}
					want, got := run(MicrosoftDomain), run(QtoolDomain)
					if !reflect.DeepEqual(want.Shape, got.Shape) || !reflect.DeepEqual(bytesOf(want), bytesOf(got)) {
						t.Errorf("%v %s %v C scale %g: com.qtool differs from com.microsoft", dt, op, sh, cs)
					}
				}
			}
		}
	}
}

// TestResize8NearestGather checks com.qtool Resize8 in nearest mode (the
// cached gather) against ONNX Resize on the same 8-bit tensor (ops/nn),
// over coordinate and nearest modes, scales and sizes, twice per shape (the
// second run reads the cache) and with shapes alternating.
func TestResize8NearestGather(t *testing.T) {
	rng := rand.New(rand.NewSource(13))
	modes := [][2]string{{"asymmetric", "floor"}, {"half_pixel", "round_prefer_floor"}, {"align_corners", "round_prefer_ceil"},
		{"pytorch_half_pixel", "ceil"}, {"half_pixel", "ceil"}}
	scales := tensor.FromFloat32([]int{4}, []float32{1, 1, 2, 0.6})
	sizes := tensor.FromInt64([]int{4}, []int64{1, 3, 7, 13})
	for _, m := range modes {
		attrs := []*graph.Attribute{graph.StringAttr("mode", "nearest"), graph.StringAttr("coordinate_transformation_mode", m[0]),
			graph.StringAttr("nearest_mode", m[1])}
		mk := func(op, domain string, extra ...*graph.Attribute) runtime.Kernel {
			n := &graph.Node{OpType: op, Domain: domain, Attrs: append(append([]*graph.Attribute{}, attrs...), extra...),
				Inputs: []*graph.Value{{Name: "x"}, {Name: "roi"}, {Name: "scales"}, {Name: "sizes"}}, Outputs: []*graph.Value{{Name: "y"}}}
			f, _ := runtime.Lookup(domain, op, tensor.Uint8)
			k, err := f(n, 18)
			if err != nil {
				t.Fatal(err)
			}
			return k
		}
		ours, ref := mk("Resize8", QtoolDomain, graph.IntAttr("onnx_opset", 18)), mk("Resize", "")
		for round := 0; round < 2; round++ {
			for _, shape := range [][]int{{1, 3, 5, 9}, {2, 3, 4, 10}} {
				for _, sz := range []bool{false, true} {
					x := tensor.MustNew(tensor.Uint8, shape)
					for i := range x.U8() {
						x.U8()[i] = uint8(rng.Intn(256))
					}
					in := []*tensor.Tensor{x, nil, scales, nil}
					if sz {
						if shape[0] != 1 {
							continue
						}
						in = []*tensor.Tensor{x, nil, nil, sizes}
					}
					ctx := &runtime.Context{Threads: 2}
					got, err := ours.Run(ctx, in)
					if err != nil {
						t.Fatal(err)
					}
					want, err := ref.Run(ctx, in)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got[0].Shape, want[0].Shape) || !reflect.DeepEqual(got[0].U8(), want[0].U8()) {
						t.Errorf("%v %v sizes=%v round %d: differs from ONNX Resize", m, shape, sz, round)
					}
				}
			}
		}
	}
}
