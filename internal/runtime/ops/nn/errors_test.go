package nn

import (
	"fmt"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

func f32T(shape ...int) *tensor.Tensor { return tensor.MustNew(tensor.Float32, shape) }

func i64T(v ...int64) *tensor.Tensor { return tensor.FromInt64([]int{len(v)}, v) }

func intAttr(name string, v int64) *graph.Attribute {
	return &graph.Attribute{Name: name, Type: graph.AttrInt, I: v}
}

func strAttr(name, v string) *graph.Attribute {
	return &graph.Attribute{Name: name, Type: graph.AttrString, S: v}
}

// TestBadInputsGiveErrors feeds malformed shapes and attributes to every
// kernel: each must return an error (from the factory or from Run), never
// panic or succeed.
func TestBadInputsGiveErrors(t *testing.T) {
	cases := []struct {
		name  string
		op    string
		opset int64
		attrs []*graph.Attribute
		in    []*tensor.Tensor
	}{
		{"conv weight rank", "Conv", 13, nil, []*tensor.Tensor{f32T(1, 2, 5, 5), f32T(3, 2, 3)}},
		{"conv group", "Conv", 13, []*graph.Attribute{intAttr("group", 3)}, []*tensor.Tensor{f32T(1, 4, 5, 5), f32T(3, 2, 3, 3)}},
		{"conv channels", "Conv", 13, nil, []*tensor.Tensor{f32T(1, 4, 5, 5), f32T(3, 2, 3, 3)}},
		{"conv bias", "Conv", 13, nil, []*tensor.Tensor{f32T(1, 2, 5, 5), f32T(3, 2, 3, 3), f32T(4)}},
		{"conv kernel_shape", "Conv", 13, []*graph.Attribute{intsAttr("kernel_shape", 2, 2)}, []*tensor.Tensor{f32T(1, 2, 5, 5), f32T(3, 2, 3, 3)}},
		{"conv kernel too big", "Conv", 13, nil, []*tensor.Tensor{f32T(1, 2, 2, 2), f32T(3, 2, 3, 3)}},
		{"conv valid too big", "Conv", 13, []*graph.Attribute{strAttr("auto_pad", "VALID")}, []*tensor.Tensor{f32T(1, 2, 2, 2), f32T(3, 2, 3, 3)}},
		{"conv empty kernel", "Conv", 13, nil, []*tensor.Tensor{f32T(1, 2, 4, 4), f32T(3, 2, 0, 3)}},
		{"conv huge pads", "Conv", 13, []*graph.Attribute{intsAttr("pads", 1<<40, 0, 0, 0)}, []*tensor.Tensor{f32T(1, 2, 4, 4), f32T(3, 2, 3, 3)}},
		{"conv pads count", "Conv", 13, []*graph.Attribute{intsAttr("pads", 1, 1)}, []*tensor.Tensor{f32T(1, 2, 4, 4), f32T(3, 2, 3, 3)}},
		{"conv negative stride", "Conv", 13, []*graph.Attribute{intsAttr("strides", -1, 1)}, []*tensor.Tensor{f32T(1, 2, 4, 4), f32T(3, 2, 3, 3)}},
		{"conv int input", "Conv", 13, nil, []*tensor.Tensor{tensor.MustNew(tensor.Int64, []int{1, 2, 4, 4}), f32T(3, 2, 3, 3)}},
		{"conv missing weights", "Conv", 13, nil, []*tensor.Tensor{f32T(1, 2, 4, 4), nil}},
		{"convtranspose channels", "ConvTranspose", 13, nil, []*tensor.Tensor{f32T(1, 3, 4, 4), f32T(2, 2, 3, 3)}},
		{"convtranspose output_shape", "ConvTranspose", 13, []*graph.Attribute{intsAttr("output_shape", -5, 4)}, []*tensor.Tensor{f32T(1, 2, 4, 4), f32T(2, 2, 3, 3)}},
		{"convtranspose huge stride", "ConvTranspose", 13, []*graph.Attribute{intsAttr("strides", 1<<30, 1<<30)}, []*tensor.Tensor{f32T(1, 2, 4, 4), f32T(2, 2, 3, 3)}},
		{"maxpool no kernel", "MaxPool", 13, nil, []*tensor.Tensor{f32T(1, 2, 4, 4)}},
		{"maxpool pads >= kernel", "MaxPool", 13, []*graph.Attribute{intsAttr("kernel_shape", 2, 2), intsAttr("pads", 5, 5, 5, 5)}, []*tensor.Tensor{f32T(1, 2, 4, 4)}},
		{"maxpool rank", "MaxPool", 13, []*graph.Attribute{intsAttr("kernel_shape", 2)}, []*tensor.Tensor{f32T(4, 4)}},
		{"avgpool kernel dims", "AveragePool", 13, []*graph.Attribute{intsAttr("kernel_shape", 2)}, []*tensor.Tensor{f32T(1, 2, 4, 4)}},
		{"globalpool rank", "GlobalAveragePool", 13, nil, []*tensor.Tensor{f32T(4)}},
		{"batchnorm params", "BatchNormalization", 15, nil, []*tensor.Tensor{f32T(1, 3, 2), f32T(3), f32T(3), f32T(2), f32T(3)}},
		{"instancenorm params", "InstanceNormalization", 6, nil, []*tensor.Tensor{f32T(1, 3, 2), f32T(2), f32T(3)}},
		{"layernorm axis", "LayerNormalization", 17, []*graph.Attribute{intAttr("axis", 5)}, []*tensor.Tensor{f32T(2, 3), f32T(3)}},
		{"layernorm scale", "LayerNormalization", 17, nil, []*tensor.Tensor{f32T(2, 3), f32T(4)}},
		{"groupnorm groups", "GroupNormalization", 21, []*graph.Attribute{intAttr("num_groups", 4)}, []*tensor.Tensor{f32T(1, 6, 2), f32T(6), f32T(6)}},
		{"groupnorm no groups", "GroupNormalization", 21, nil, []*tensor.Tensor{f32T(1, 6, 2), f32T(6), f32T(6)}},
		{"gemm k", "Gemm", 13, nil, []*tensor.Tensor{f32T(2, 3), f32T(4, 5)}},
		{"gemm c", "Gemm", 13, nil, []*tensor.Tensor{f32T(2, 3), f32T(3, 5), f32T(3, 5)}},
		{"gemm rank", "Gemm", 13, nil, []*tensor.Tensor{f32T(2, 3, 1), f32T(3, 5)}},
		{"matmul k", "MatMul", 13, nil, []*tensor.Tensor{f32T(2, 3), f32T(4, 5)}},
		{"matmul batch", "MatMul", 13, nil, []*tensor.Tensor{f32T(2, 2, 3), f32T(3, 3, 5)}},
		{"matmul scalar", "MatMul", 13, nil, []*tensor.Tensor{f32T(), f32T(3)}},
		{"pad count", "Pad", 13, nil, []*tensor.Tensor{f32T(2, 3), i64T(1, 1)}},
		{"pad crop", "Pad", 13, nil, []*tensor.Tensor{f32T(2, 3), i64T(-3, 0, 0, 0)}},
		{"pad huge", "Pad", 13, nil, []*tensor.Tensor{f32T(2, 3), i64T(1<<40, 0, 0, 0)}},
		{"pad constant dtype", "Pad", 13, nil, []*tensor.Tensor{f32T(2, 3), i64T(1, 0, 0, 0), i64T(1)}},
		{"pad mode", "Pad", 13, []*graph.Attribute{strAttr("mode", "mirror")}, []*tensor.Tensor{f32T(2, 3), i64T(1, 0, 0, 0)}},
		{"pad edge of empty", "Pad", 13, []*graph.Attribute{strAttr("mode", "edge")}, []*tensor.Tensor{f32T(0, 3), i64T(1, 0, 0, 0)}},
		{"resize scales count", "Resize", 13, nil, []*tensor.Tensor{f32T(1, 1, 2, 2), nil, tensor.FromFloat32([]int{2}, []float32{2, 2})}},
		{"resize negative scale", "Resize", 13, nil, []*tensor.Tensor{f32T(1, 1, 2, 2), nil, tensor.FromFloat32([]int{4}, []float32{1, 1, -2, 2})}},
		{"resize huge", "Resize", 13, nil, []*tensor.Tensor{f32T(1, 1, 2, 2), nil, tensor.FromFloat32([]int{4}, []float32{1, 1, 1e9, 1e9})}},
		{"resize both", "Resize", 13, nil, []*tensor.Tensor{f32T(1, 1, 2, 2), nil, tensor.FromFloat32([]int{4}, []float32{1, 1, 2, 2}), i64T(1, 1, 4, 4)}},
		{"resize none", "Resize", 13, nil, []*tensor.Tensor{f32T(1, 1, 2, 2)}},
		{"resize mode", "Resize", 13, []*graph.Attribute{strAttr("mode", "area")}, []*tensor.Tensor{f32T(1, 1, 2, 2)}},
		{"lstm w shape", "LSTM", 14, []*graph.Attribute{intAttr("hidden_size", 3)}, []*tensor.Tensor{f32T(2, 1, 4), f32T(1, 12, 5), f32T(1, 12, 3)}},
		{"lstm seq len", "LSTM", 14, []*graph.Attribute{intAttr("hidden_size", 3)}, []*tensor.Tensor{f32T(2, 1, 4), f32T(1, 12, 4), f32T(1, 12, 3), nil, tensor.FromInt64([]int{1}, []int64{3})}},
		{"gru direction", "GRU", 14, []*graph.Attribute{strAttr("direction", "sideways")}, []*tensor.Tensor{f32T(2, 1, 4)}},
		{"rnn activation", "RNN", 14, []*graph.Attribute{&graph.Attribute{Name: "activations", Type: graph.AttrStrings, Strings: []string{"Gelu"}}}, []*tensor.Tensor{f32T(2, 1, 4)}},
		{"rnn rank", "RNN", 14, []*graph.Attribute{intAttr("hidden_size", 3)}, []*tensor.Tensor{f32T(2, 4), f32T(1, 3, 4), f32T(1, 3, 3)}},
		{"gridsample grid shape", "GridSample", 16, nil, []*tensor.Tensor{f32T(1, 1, 4, 4), f32T(1, 3, 3, 3)}},
		{"gridsample batch", "GridSample", 16, nil, []*tensor.Tensor{f32T(1, 1, 4, 4), f32T(2, 3, 3, 2)}},
		{"gridsample mode", "GridSample", 16, []*graph.Attribute{strAttr("mode", "area")}, []*tensor.Tensor{f32T(1, 1, 4, 4), f32T(1, 3, 3, 2)}},
		{"maxunpool indices", "MaxUnpool", 11, []*graph.Attribute{intsAttr("kernel_shape", 2, 2)}, []*tensor.Tensor{f32T(1, 1, 2, 2), i64T(0, 1, 99, 2)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := &graph.Node{OpType: c.op, Attrs: c.attrs, Outputs: []*graph.Value{{Name: "y"}}}
			for range c.in {
				n.Inputs = append(n.Inputs, &graph.Value{})
			}
			f, ok := runtime.Lookup("", c.op, tensor.Float32)
			if !ok {
				t.Fatalf("%s not registered", c.op)
			}
			err := func() (err error) {
				defer func() {
					if r := recover(); r != nil {
						err = fmt.Errorf("panic: %v", r)
						t.Errorf("panicked: %v", r)
					}
				}()
				k, err := f(n, c.opset)
				if err != nil {
					return err
				}
				_, err = k.Run(&runtime.Context{Threads: 2}, c.in)
				return err
			}()
			if err == nil {
				t.Errorf("no error")
			}
		})
	}
}

// TestRuntimeWeightsRefilled checks that packs of non-constant weights are
// not reused after the caller refills the same tensor with new values.
func TestRuntimeWeightsRefilled(t *testing.T) {
	ctx := &runtime.Context{Threads: 1}
	a := tensor.FromFloat32([]int{1, 2}, []float32{1, 2})
	b := tensor.FromFloat32([]int{2, 1}, []float32{3, 4})
	n := &graph.Node{OpType: "Gemm", Inputs: []*graph.Value{{}, {}}, Outputs: []*graph.Value{{}}}
	k, err := newGemm(n, 13)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		b0, b1 float32
		want   float32
	}{{3, 4, 11}, {3, 4, 11}, {5, 6, 17}} {
		b.F32()[0], b.F32()[1] = tc.b0, tc.b1
		out, err := k.Run(ctx, []*tensor.Tensor{a, b})
		if err != nil {
			t.Fatal(err)
		}
		if got := out[0].F32()[0]; got != tc.want {
			t.Fatalf("B = [%v %v]: got %v, want %v", tc.b0, tc.b1, got, tc.want)
		}
	}
	x := tensor.FromFloat32([]int{1, 1, 1, 2}, []float32{1, 2})
	w := tensor.FromFloat32([]int{1, 1, 1, 2}, []float32{3, 4})
	cn := &graph.Node{OpType: "Conv", Inputs: []*graph.Value{{}, {}}, Outputs: []*graph.Value{{}}}
	ck, err := newConv(cn, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ w0, w1, want float32 }{{3, 4, 11}, {5, 6, 17}} {
		w.F32()[0], w.F32()[1] = tc.w0, tc.w1
		out, err := ck.Run(ctx, []*tensor.Tensor{x, w})
		if err != nil {
			t.Fatal(err)
		}
		if got := out[0].F32()[0]; got != tc.want {
			t.Fatalf("W = [%v %v]: got %v, want %v", tc.w0, tc.w1, got, tc.want)
		}
	}
}

// TestOverriddenInitializer: a Session may pass another tensor where the
// graph has an initializer (one the model also lists as an input); the
// plan-time pack must not be used for it.
func TestOverriddenInitializer(t *testing.T) {
	ctx := &runtime.Context{Threads: 1}
	a := tensor.FromFloat32([]int{1, 2}, []float32{1, 2})
	konst := tensor.FromFloat32([]int{2, 1}, []float32{3, 4})
	other := tensor.FromFloat32([]int{2, 1}, []float32{5, 6})
	n := &graph.Node{OpType: "MatMul", Inputs: []*graph.Value{{}, {Const: konst}}, Outputs: []*graph.Value{{}}}
	k, err := newMatMul(n, 13)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		b    *tensor.Tensor
		want float32
	}{{konst, 11}, {other, 17}, {konst, 11}} {
		out, err := k.Run(ctx, []*tensor.Tensor{a, tc.b})
		if err != nil {
			t.Fatal(err)
		}
		if got := out[0].F32()[0]; got != tc.want {
			t.Fatalf("got %v, want %v", got, tc.want)
		}
	}
	// Same bytes, transposed shape: a new pack, not the cached one.
	g := &graph.Node{OpType: "Gemm", Inputs: []*graph.Value{{}, {}}, Outputs: []*graph.Value{{}}}
	gk, err := newGemm(g, 13)
	if err != nil {
		t.Fatal(err)
	}
	b1 := tensor.FromFloat32([]int{2, 2}, []float32{1, 2, 3, 4})
	b2 := tensor.FromFloat32([]int{2, 2}, []float32{1, 2, 3, 4})
	x := tensor.FromFloat32([]int{1, 2}, []float32{1, 1})
	o1, _ := gk.Run(ctx, []*tensor.Tensor{x, b1})
	o2, _ := gk.Run(ctx, []*tensor.Tensor{x, b2})
	if o1[0].F32()[0] != 4 || o2[0].F32()[0] != 4 {
		t.Fatalf("got %v and %v, want 4", o1[0].F32(), o2[0].F32())
	}
	b3 := tensor.FromFloat32([]int{1, 4}, []float32{1, 2, 3, 4})
	if _, err := gk.Run(ctx, []*tensor.Tensor{x, b3}); err == nil {
		t.Fatal("a [1 4] B with K=2 must be refused, not served from the cache")
	}
}

// TestResizeInt8Nearest: uint8/int8 Resize (QOperator graphs) is the float
// result exactly for nearest, and refused for linear.
func TestResizeInt8Nearest(t *testing.T) {
	ctx := &runtime.Context{Threads: 1}
	scales := tensor.FromFloat32([]int{4}, []float32{1, 1, 2, 1.5})
	n := &graph.Node{OpType: "Resize", Inputs: []*graph.Value{{}, {}, {}}, Outputs: []*graph.Value{{}}, Attrs: []*graph.Attribute{strAttr("mode", "nearest")}}
	k, err := newResize(n, 13)
	if err != nil {
		t.Fatal(err)
	}
	u := &tensor.Tensor{DType: tensor.Uint8, Shape: []int{1, 1, 2, 3}, Data: []uint8{0, 50, 100, 150, 200, 255}}
	f := tensor.FromFloat32([]int{1, 1, 2, 3}, []float32{0, 50, 100, 150, 200, 255})
	uo, err := k.Run(ctx, []*tensor.Tensor{u, nil, scales})
	if err != nil {
		t.Fatal(err)
	}
	fo, err := k.Run(ctx, []*tensor.Tensor{f, nil, scales})
	if err != nil {
		t.Fatal(err)
	}
	if uo[0].DType != tensor.Uint8 || !tensor.SameShape(uo[0].Shape, fo[0].Shape) {
		t.Fatalf("got %v, want uint8%v", uo[0], fo[0].Shape)
	}
	for i, v := range fo[0].F32() {
		if float32(uo[0].U8()[i]) != v {
			t.Fatalf("[%d] = %d, want %v", i, uo[0].U8()[i], v)
		}
	}
	n.Attrs[0] = strAttr("mode", "linear")
	k, _ = newResize(n, 13)
	if _, err := k.Run(ctx, []*tensor.Tensor{u, nil, scales}); err == nil {
		t.Fatal("linear uint8 resize must be refused")
	}
}
