package qlinear

import (
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

func u8T(shape []int, v ...uint8) *tensor.Tensor {
	t := tensor.MustNew(tensor.Uint8, shape)
	copy(t.U8(), v)
	return t
}

func i8T(shape []int) *tensor.Tensor  { return tensor.MustNew(tensor.Int8, shape) }
func f32T(shape []int) *tensor.Tensor { return tensor.MustNew(tensor.Float32, shape) }

func scal(v float32) *tensor.Tensor { return tensor.Scalar(v) }

// TestBadInputs feeds malformed inputs and attributes to every op: each must
// give an error (from the factory or from Run), never a panic.
func TestBadInputs(t *testing.T) {
	attrInts := func(name string, v ...int64) *graph.Attribute {
		return &graph.Attribute{Name: name, Type: graph.AttrInts, Ints: v}
	}
	attrInt := func(name string, v int64) *graph.Attribute {
		return &graph.Attribute{Name: name, Type: graph.AttrInt, I: v}
	}
	nanScale := scal(0)
	nanScale.F32()[0] = float32(nan())
	goodConv := func() []*tensor.Tensor {
		return []*tensor.Tensor{u8T([]int{1, 2, 4, 4}), scal(0.1), u8T(nil, 3), i8T([]int{3, 2, 3, 3}), scal(0.1), i8T(nil), scal(0.2), u8T(nil, 4)}
	}
	goodMM := func() []*tensor.Tensor {
		return []*tensor.Tensor{u8T([]int{2, 3}), scal(0.1), u8T(nil, 3), i8T([]int{3, 4}), scal(0.1), i8T(nil), scal(0.2), u8T(nil, 4)}
	}
	type tc struct {
		name  string
		op    string
		attrs []*graph.Attribute
		in    []*tensor.Tensor
	}
	with := func(in []*tensor.Tensor, i int, t *tensor.Tensor) []*tensor.Tensor {
		in[i] = t
		return in
	}
	cases := []tc{
		{"conv x rank 2", "QLinearConv", nil, with(goodConv(), 0, u8T([]int{2, 16}))},
		{"conv channel mismatch", "QLinearConv", nil, with(goodConv(), 3, i8T([]int{3, 5, 3, 3}))},
		{"conv w rank", "QLinearConv", nil, with(goodConv(), 3, i8T([]int{3, 2, 3}))},
		{"conv kernel too big", "QLinearConv", nil, with(goodConv(), 3, i8T([]int{3, 2, 5, 5}))},
		{"conv group 0", "QLinearConv", []*graph.Attribute{attrInt("group", 0)}, goodConv()},
		{"conv group mismatch", "QLinearConv", []*graph.Attribute{attrInt("group", 3)}, goodConv()},
		{"conv stride 0", "QLinearConv", []*graph.Attribute{attrInts("strides", 0, 1)}, goodConv()},
		{"conv pads length", "QLinearConv", []*graph.Attribute{attrInts("pads", 1, 1)}, goodConv()},
		{"conv negative pads", "QLinearConv", []*graph.Attribute{attrInts("pads", -1, 0, 0, 0)}, goodConv()},
		{"conv kernel_shape mismatch", "QLinearConv", []*graph.Attribute{attrInts("kernel_shape", 2, 2)}, goodConv()},
		{"conv bad auto_pad", "QLinearConv", []*graph.Attribute{{Name: "auto_pad", Type: graph.AttrString, S: "FOO"}}, goodConv()},
		{"conv NaN scale", "QLinearConv", nil, with(goodConv(), 1, nanScale)},
		{"conv w_scale length", "QLinearConv", nil, with(goodConv(), 4, f32T([]int{2}))},
		{"conv zero point dtype", "QLinearConv", nil, with(goodConv(), 2, i8T(nil))},
		{"conv y zero point float", "QLinearConv", nil, with(goodConv(), 7, scal(1))},
		{"conv y zero point missing", "QLinearConv", nil, with(goodConv(), 7, nil)},
		{"conv bias dtype", "QLinearConv", nil, append(goodConv(), f32T([]int{3}))},
		{"conv bias length", "QLinearConv", nil, append(goodConv(), tensor.MustNew(tensor.Int32, []int{2}))},
		{"conv x float", "QLinearConv", nil, with(goodConv(), 0, f32T([]int{1, 2, 4, 4}))},
		{"conv data shorter than shape", "QLinearConv", nil, with(goodConv(), 0, &tensor.Tensor{DType: tensor.Uint8, Shape: []int{1, 2, 1 << 20, 1 << 20}, Data: []uint8{1}})},
		{"conv x missing", "QLinearConv", nil, with(goodConv(), 0, nil)},
		{"convinteger w zero point per-channel length", "ConvInteger", nil, []*tensor.Tensor{u8T([]int{1, 2, 4, 4}), u8T([]int{3, 2, 3, 3}), u8T(nil), u8T([]int{2})}},
		{"mm inner mismatch", "QLinearMatMul", nil, with(goodMM(), 3, i8T([]int{4, 4}))},
		{"mm scalar a", "QLinearMatMul", nil, with(goodMM(), 0, u8T(nil))},
		{"mm batch mismatch", "QLinearMatMul", nil, with(with(goodMM(), 0, u8T([]int{2, 2, 3})), 3, i8T([]int{3, 3, 4}))},
		{"mm per-row a scale", "QLinearMatMul", nil, with(with(goodMM(), 1, f32T([]int{2})), 2, u8T([]int{2}))},
		{"mm b_scale length", "QLinearMatMul", nil, with(goodMM(), 4, f32T([]int{3}))},
		{"mm y zero point int32", "QLinearMatMul", nil, with(goodMM(), 7, tensor.MustNew(tensor.Int32, nil))},
		{"mm a zero point dtype", "QLinearMatMul", nil, with(goodMM(), 2, i8T(nil))},
		{"mm inf scale", "QLinearMatMul", nil, with(goodMM(), 6, scal(float32(inf())))},
		{"mmi inner mismatch", "MatMulInteger", nil, []*tensor.Tensor{u8T([]int{2, 3}), i8T([]int{2, 4})}},
		{"mmi b zero point length", "MatMulInteger", nil, []*tensor.Tensor{u8T([]int{2, 3}), i8T([]int{3, 4}), nil, i8T([]int{3})}},
		{"mmi b int32", "MatMulInteger", nil, []*tensor.Tensor{u8T([]int{2, 3}), tensor.MustNew(tensor.Int32, []int{3, 4})}},
		{"qgemm inner", "com.microsoft:QGemm", nil, []*tensor.Tensor{u8T([]int{2, 3}), scal(0.1), u8T(nil), i8T([]int{4, 5}), scal(0.1), i8T(nil)}},
		{"qgemm bias shape", "com.microsoft:QGemm", nil, []*tensor.Tensor{u8T([]int{2, 3}), scal(0.1), u8T(nil), i8T([]int{3, 5}), scal(0.1), i8T(nil), tensor.MustNew(tensor.Int32, []int{3})}},
		{"qgemm y_scale alone", "com.microsoft:QGemm", nil, []*tensor.Tensor{u8T([]int{2, 3}), scal(0.1), u8T(nil), i8T([]int{3, 5}), scal(0.1), i8T(nil), nil, scal(0.1)}},
		{"qgemm rank 3", "com.microsoft:QGemm", nil, []*tensor.Tensor{u8T([]int{1, 2, 3}), scal(0.1), u8T(nil), i8T([]int{3, 5}), scal(0.1), i8T(nil)}},
		{"leakyrelu zero point dtype", "com.microsoft:QLinearLeakyRelu", nil, []*tensor.Tensor{u8T([]int{2, 3}), scal(0.1), i8T(nil), scal(0.1), u8T(nil)}},
		{"leakyrelu y scale missing", "com.microsoft:QLinearLeakyRelu", nil, []*tensor.Tensor{u8T([]int{2, 3}), scal(0.1), u8T(nil), nil, u8T(nil)}},
		{"avgpool kernel too big", "com.microsoft:QLinearAveragePool", []*graph.Attribute{attrInts("kernel_shape", 5, 5)}, []*tensor.Tensor{u8T([]int{1, 2, 4, 4}), scal(0.1), u8T(nil), scal(0.1), u8T(nil)}},
		{"avgpool rank", "com.microsoft:QLinearAveragePool", []*graph.Attribute{attrInts("kernel_shape", 2, 2)}, []*tensor.Tensor{u8T([]int{2, 4, 4}), scal(0.1), u8T(nil), scal(0.1), u8T(nil)}},
		{"gap rank", "com.microsoft:QLinearGlobalAveragePool", nil, []*tensor.Tensor{u8T([]int{2, 4}), scal(0.1), u8T(nil), scal(0.1), u8T(nil)}},
		{"gap scale range", "com.microsoft:QLinearGlobalAveragePool", nil, []*tensor.Tensor{u8T([]int{1, 2, 4, 4}), scal(1000), u8T(nil), scal(0.001), u8T(nil)}},
		{"concat axis", "com.microsoft:QLinearConcat", []*graph.Attribute{attrInt("axis", 3)}, []*tensor.Tensor{scal(0.1), u8T(nil), u8T([]int{2, 3}), scal(0.1), u8T(nil)}},
		{"concat shapes", "com.microsoft:QLinearConcat", []*graph.Attribute{attrInt("axis", 0)}, []*tensor.Tensor{scal(0.1), u8T(nil), u8T([]int{2, 3}), scal(0.1), u8T(nil), u8T([]int{2, 4}), scal(0.1), u8T(nil)}},
		{"add shapes", "com.microsoft:QLinearAdd", nil, []*tensor.Tensor{u8T([]int{2, 3}), scal(0.1), u8T(nil), u8T([]int{2, 4}), scal(0.1), u8T(nil), scal(0.1), u8T(nil)}},
		{"add dtypes", "com.microsoft:QLinearAdd", nil, []*tensor.Tensor{u8T([]int{2, 3}), scal(0.1), u8T(nil), i8T([]int{2, 3}), scal(0.1), i8T(nil), scal(0.1), u8T(nil)}},
		{"add zero point vector", "com.microsoft:QLinearAdd", nil, []*tensor.Tensor{u8T([]int{2, 3}), scal(0.1), u8T([]int{2}), u8T([]int{2, 3}), scal(0.1), u8T(nil), scal(0.1), u8T(nil)}},
		{"add NaN scale", "com.microsoft:QLinearAdd", nil, []*tensor.Tensor{u8T([]int{2, 3}), nanScale, u8T(nil), u8T([]int{2, 3}), scal(0.1), u8T(nil), scal(0.1), u8T(nil)}},
	}
	for _, c := range cases {
		for _, constW := range []bool{false, true} {
			op, domain := c.op, ""
			if i := strings.Index(op, ":"); i >= 0 {
				domain, op = op[:i], op[i+1:]
			}
			n := &graph.Node{OpType: op, Domain: domain, Attrs: c.attrs, Outputs: []*graph.Value{{Name: "y"}}}
			for i, t := range c.in {
				v := &graph.Value{Name: "in"}
				if t == nil {
					v = nil
				} else if constW && i > 0 {
					v.Const = t
				}
				n.Inputs = append(n.Inputs, v)
			}
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s (const=%v): panic %v", c.name, constW, r)
					}
				}()
				f, ok := runtime.Lookup(domain, op, tensor.Uint8)
				if !ok {
					t.Fatalf("%s not registered", c.op)
				}
				k, err := f(n, 13)
				if err != nil {
					return
				}
				if _, err := k.Run(&runtime.Context{Threads: 2}, c.in); err == nil {
					t.Errorf("%s (const=%v): no error", c.name, constW)
				}
			}()
		}
	}
}

func nan() float64 { z := 0.0; return z / z }
func inf() float64 { z := 0.0; return 1 / z }
