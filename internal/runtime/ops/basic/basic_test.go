package basic

import (
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/x448/float16"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

func f32(shape []int, v ...float32) *tensor.Tensor { return tensor.FromFloat32(shape, v) }
func i64(shape []int, v ...int64) *tensor.Tensor   { return tensor.FromInt64(shape, v) }
func bools(shape []int, v ...bool) *tensor.Tensor {
	return &tensor.Tensor{DType: tensor.Bool, Shape: shape, Data: v}
}
func sh(d ...int) []int { return d }

var inf = float32(math.Inf(1))
var nan = float32(math.NaN())

// kernel prepares op as a node with the given attributes, inputs (whose
// constness the factory may see) and number of outputs.
func kernel(op string, opset int64, attrs []*graph.Attribute, in []*tensor.Tensor, nout int) (runtime.Kernel, error) {
	n := &graph.Node{OpType: op, Attrs: attrs}
	for i, t := range in {
		if t == nil {
			n.Inputs = append(n.Inputs, nil)
			continue
		}
		n.Inputs = append(n.Inputs, &graph.Value{Name: fmt.Sprint("in", i), DType: t.DType})
	}
	for i := 0; i < nout; i++ {
		n.Outputs = append(n.Outputs, &graph.Value{Name: fmt.Sprint("out", i)})
	}
	dt := runtime.AnyDType
	if len(in) > 0 && in[0] != nil {
		dt = in[0].DType
	}
	f, ok := runtime.Lookup("", op, dt)
	if !ok {
		return nil, fmt.Errorf("no kernel for %s %v", op, dt)
	}
	return f(n, opset)
}

func run(op string, opset int64, attrs []*graph.Attribute, in ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	return runN(op, opset, attrs, 1, 1, in...)
}

func runN(op string, opset int64, attrs []*graph.Attribute, nout, threads int, in ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	k, err := kernel(op, opset, attrs, in, nout)
	if err != nil {
		return nil, err
	}
	return k.Run(&runtime.Context{Threads: threads}, in)
}

func same(got, want *tensor.Tensor) string {
	if got == nil {
		return "no output"
	}
	if got.DType != want.DType || !tensor.SameShape(got.Shape, want.Shape) {
		return fmt.Sprintf("got %v, want %v", got, want)
	}
	g, _ := got.AsFloat64()
	w, _ := want.AsFloat64()
	for i := range w {
		if !(g[i] == w[i] || (math.IsNaN(g[i]) && math.IsNaN(w[i])) || math.Abs(g[i]-w[i]) <= 1e-6*math.Abs(w[i])) {
			return fmt.Sprintf("got %v, want %v", g, w)
		}
	}
	return ""
}

type opCase struct {
	name  string
	op    string
	opset int64
	attrs []*graph.Attribute
	in    []*tensor.Tensor
	want  []*tensor.Tensor // nil with err set: an error is expected
	err   string
}

func checkCases(t *testing.T, cases []opCase) {
	t.Helper()
	for _, c := range cases {
		opset := c.opset
		if opset == 0 {
			opset = 17
		}
		got, err := runN(c.op, opset, c.attrs, max(1, len(c.want)), 1, c.in...)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want one containing %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		for i, w := range c.want {
			if i >= len(got) {
				t.Errorf("%s: output %d missing", c.name, i)
				continue
			}
			if msg := same(got[i], w); msg != "" {
				t.Errorf("%s: output %d: %s", c.name, i, msg)
			}
		}
	}
}

func ia(name string, v ...int64) *graph.Attribute { return graph.IntsAttr(name, v) }
func in1(name string, v int64) *graph.Attribute   { return graph.IntAttr(name, v) }

func TestElementwise(t *testing.T) {
	x := f32(sh(2, 3), -2, -0.5, 0, 0.5, 3, 10)
	checkCases(t, []opCase{
		{name: "add row", op: "Add", in: []*tensor.Tensor{x, f32(sh(3), 1, 2, 3)}, want: []*tensor.Tensor{f32(sh(2, 3), -1, 1.5, 3, 1.5, 5, 13)}},
		{name: "add col", op: "Add", in: []*tensor.Tensor{f32(sh(2, 1), 1, 2), f32(sh(1, 3), 10, 20, 30)}, want: []*tensor.Tensor{f32(sh(2, 3), 11, 21, 31, 12, 22, 32)}},
		{name: "sub scalar left", op: "Sub", in: []*tensor.Tensor{f32(sh(), 1), f32(sh(2), 3, 4)}, want: []*tensor.Tensor{f32(sh(2), -2, -3)}},
		{name: "div", op: "Div", in: []*tensor.Tensor{f32(sh(2), 1, 3), f32(sh(2), 2, 0)}, want: []*tensor.Tensor{f32(sh(2), 0.5, inf)}},
		{name: "int div truncates", op: "Div", in: []*tensor.Tensor{i64(sh(3), 7, -7, 6), i64(sh(), 2)}, want: []*tensor.Tensor{i64(sh(3), 3, -3, 3)}},
		{name: "int div by zero", op: "Div", in: []*tensor.Tensor{i64(sh(1), 7), i64(sh(1), 0)}, err: "division by zero"},
		{name: "mul int64", op: "Mul", in: []*tensor.Tensor{i64(sh(2), 3, 1<<40), i64(sh(1), 4)}, want: []*tensor.Tensor{i64(sh(2), 12, 1<<42)}},
		{name: "bad broadcast", op: "Add", in: []*tensor.Tensor{f32(sh(2), 1, 2), f32(sh(3), 1, 2, 3)}, err: "broadcast"},
		{name: "mixed types", op: "Add", in: []*tensor.Tensor{f32(sh(1), 1), i64(sh(1), 1)}, err: "differ"},
		{name: "max nan", op: "Max", in: []*tensor.Tensor{f32(sh(3), 1, nan, 3), f32(sh(3), 2, 0, nan)}, want: []*tensor.Tensor{f32(sh(3), 2, nan, nan)}},
		{name: "min 3 inputs", op: "Min", in: []*tensor.Tensor{f32(sh(2), 1, 5), f32(sh(1), 3), f32(sh(2), 4, 2)}, want: []*tensor.Tensor{f32(sh(2), 1, 2)}},
		{name: "sum 1 input", op: "Sum", in: []*tensor.Tensor{f32(sh(2), 1, 5)}, want: []*tensor.Tensor{f32(sh(2), 1, 5)}},
		{name: "mean", op: "Mean", in: []*tensor.Tensor{f32(sh(2), 1, 5), f32(sh(2), 2, 6), f32(sh(2), 3, 7)}, want: []*tensor.Tensor{f32(sh(2), 2, 6)}},
		{name: "pow", op: "Pow", in: []*tensor.Tensor{f32(sh(3), 2, 4, -2), f32(sh(3), 3, 0.5, 2)}, want: []*tensor.Tensor{f32(sh(3), 8, 2, 4)}},
		{name: "pow int exp", op: "Pow", in: []*tensor.Tensor{f32(sh(2), 2, 3), i64(sh(1), 2)}, want: []*tensor.Tensor{f32(sh(2), 4, 9)}},
		{name: "relu", op: "Relu", in: []*tensor.Tensor{x}, want: []*tensor.Tensor{f32(sh(2, 3), 0, 0, 0, 0.5, 3, 10)}},
		{name: "leakyrelu", op: "LeakyRelu", attrs: []*graph.Attribute{graph.FloatAttr("alpha", 0.1)}, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{f32(sh(2, 3), -0.2, -0.05, 0, 0.5, 3, 10)}},
		{name: "hardswish", op: "HardSwish", in: []*tensor.Tensor{x}, want: []*tensor.Tensor{f32(sh(2, 3), -2.0/6, -0.5*2.5/6, 0, 0.5*3.5/6, 3, 10)}},
		{name: "hardsigmoid", op: "HardSigmoid", in: []*tensor.Tensor{x}, want: []*tensor.Tensor{f32(sh(2, 3), 0.1, 0.4, 0.5, 0.6, 1, 1)}},
		{name: "elu", op: "Elu", in: []*tensor.Tensor{f32(sh(2), -1, 2)}, want: []*tensor.Tensor{f32(sh(2), float32(math.Exp(-1)-1), 2)}},
		{name: "sigmoid", op: "Sigmoid", in: []*tensor.Tensor{f32(sh(3), 0, 100, -100)}, want: []*tensor.Tensor{f32(sh(3), 0.5, 1, float32(1/(1+math.Exp(100))))}},
		{name: "sqrt neg", op: "Sqrt", in: []*tensor.Tensor{f32(sh(2), 4, -1)}, want: []*tensor.Tensor{f32(sh(2), 2, nan)}},
		{name: "neg int", op: "Neg", in: []*tensor.Tensor{i64(sh(2), 4, -1)}, want: []*tensor.Tensor{i64(sh(2), -4, 1)}},
		{name: "round half even", op: "Round", in: []*tensor.Tensor{f32(sh(4), 0.5, 1.5, 2.5, -0.5)}, want: []*tensor.Tensor{f32(sh(4), 0, 2, 2, 0)}},
		{name: "clip attrs opset 6", op: "Clip", opset: 6, attrs: []*graph.Attribute{graph.FloatAttr("min", -1), graph.FloatAttr("max", 1)}, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{f32(sh(2, 3), -1, -0.5, 0, 0.5, 1, 1)}},
		{name: "clip inputs", op: "Clip", opset: 13, in: []*tensor.Tensor{x, f32(sh(), 0), nil}, want: []*tensor.Tensor{f32(sh(2, 3), 0, 0, 0, 0.5, 3, 10)}},
		{name: "clip min>max", op: "Clip", opset: 13, in: []*tensor.Tensor{x, f32(sh(), 2), f32(sh(), 1)}, want: []*tensor.Tensor{f32(sh(2, 3), 1, 1, 1, 1, 1, 1)}},
		{name: "clip int8", op: "Clip", opset: 13, in: []*tensor.Tensor{{DType: tensor.Int8, Shape: sh(3), Data: []int8{-128, 0, 127}}, {DType: tensor.Int8, Shape: sh(), Data: []int8{-5}}, {DType: tensor.Int8, Shape: sh(), Data: []int8{5}}}, want: []*tensor.Tensor{{DType: tensor.Int8, Shape: sh(3), Data: []int8{-5, 0, 5}}}},
		{name: "clip bound type", op: "Clip", opset: 13, in: []*tensor.Tensor{x, i64(sh(), 0)}, err: "bound"},
		{name: "equal int64", op: "Equal", in: []*tensor.Tensor{i64(sh(3), 1, 2, 3), i64(sh(1), 2)}, want: []*tensor.Tensor{bools(sh(3), false, true, false)}},
		{name: "less", op: "Less", in: []*tensor.Tensor{f32(sh(3), 1, 2, 3), f32(sh(1), 2)}, want: []*tensor.Tensor{bools(sh(3), true, false, false)}},
		{name: "greater int64 large", op: "Greater", in: []*tensor.Tensor{i64(sh(1), 1<<60+1), i64(sh(1), 1<<60)}, want: []*tensor.Tensor{bools(sh(1), true)}},
		{name: "and", op: "And", in: []*tensor.Tensor{bools(sh(2), true, false), bools(sh(1), true)}, want: []*tensor.Tensor{bools(sh(2), true, false)}},
		{name: "not", op: "Not", in: []*tensor.Tensor{bools(sh(2), true, false)}, want: []*tensor.Tensor{bools(sh(2), false, true)}},
		{name: "where", op: "Where", in: []*tensor.Tensor{bools(sh(2, 1), true, false), f32(sh(3), 1, 2, 3), f32(sh(), 0)}, want: []*tensor.Tensor{f32(sh(2, 3), 1, 2, 3, 0, 0, 0)}},
		{name: "where types", op: "Where", in: []*tensor.Tensor{bools(sh(1), true), f32(sh(1), 1), i64(sh(1), 1)}, err: "Y is"},
		{name: "prelu opset-6 channel slope", op: "PRelu", in: []*tensor.Tensor{f32(sh(1, 2, 3), -1, -1, 1, -1, -1, 1), f32(sh(2), 0.5, 2)}, want: []*tensor.Tensor{f32(sh(1, 2, 3), -0.5, -0.5, 1, -2, -2, 1)}},
		{name: "prelu bad slope", op: "PRelu", in: []*tensor.Tensor{f32(sh(1, 2, 3), -1, -1, 1, -1, -1, 1), f32(sh(4), 1, 2, 3, 4)}, err: "broadcast"},
		{name: "prelu", op: "PRelu", in: []*tensor.Tensor{f32(sh(2, 2), -1, 1, -2, 2), f32(sh(2, 1), 0.5, 0.25)}, want: []*tensor.Tensor{f32(sh(2, 2), -0.5, 1, -0.5, 2)}},
	})
}

func TestShapeOps(t *testing.T) {
	x := f32(sh(2, 3), 0, 1, 2, 3, 4, 5)
	seq := f32(sh(10), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	checkCases(t, []opCase{
		{name: "reshape 0 -1", op: "Reshape", in: []*tensor.Tensor{x, i64(sh(2), 0, -1)}, want: []*tensor.Tensor{f32(sh(2, 3), 0, 1, 2, 3, 4, 5)}},
		{name: "reshape -1", op: "Reshape", in: []*tensor.Tensor{x, i64(sh(3), 3, -1, 1)}, want: []*tensor.Tensor{f32(sh(3, 2, 1), 0, 1, 2, 3, 4, 5)}},
		{name: "reshape allowzero", op: "Reshape", attrs: []*graph.Attribute{in1("allowzero", 1)}, in: []*tensor.Tensor{f32(sh(0, 3)), i64(sh(2), 3, 0)}, want: []*tensor.Tensor{f32(sh(3, 0))}},
		{name: "reshape count", op: "Reshape", in: []*tensor.Tensor{x, i64(sh(1), 4)}, err: "cannot reshape"},
		{name: "reshape two -1", op: "Reshape", in: []*tensor.Tensor{x, i64(sh(2), -1, -1)}, err: "more than one"},
		{name: "flatten", op: "Flatten", attrs: []*graph.Attribute{in1("axis", 0)}, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{f32(sh(1, 6), 0, 1, 2, 3, 4, 5)}},
		{name: "flatten neg", op: "Flatten", attrs: []*graph.Attribute{in1("axis", -1)}, in: []*tensor.Tensor{f32(sh(1, 2, 3), 0, 1, 2, 3, 4, 5)}, want: []*tensor.Tensor{f32(sh(2, 3), 0, 1, 2, 3, 4, 5)}},
		{name: "squeeze attr", op: "Squeeze", opset: 11, attrs: []*graph.Attribute{ia("axes", -1)}, in: []*tensor.Tensor{f32(sh(2, 1), 1, 2)}, want: []*tensor.Tensor{f32(sh(2), 1, 2)}},
		{name: "squeeze all", op: "Squeeze", opset: 13, in: []*tensor.Tensor{f32(sh(1, 2, 1), 1, 2)}, want: []*tensor.Tensor{f32(sh(2), 1, 2)}},
		{name: "squeeze not 1", op: "Squeeze", opset: 13, in: []*tensor.Tensor{f32(sh(2, 1), 1, 2), i64(sh(1), 0)}, err: "cannot squeeze"},
		{name: "unsqueeze input", op: "Unsqueeze", opset: 13, in: []*tensor.Tensor{f32(sh(2), 1, 2), i64(sh(2), 0, -1)}, want: []*tensor.Tensor{f32(sh(1, 2, 1), 1, 2)}},
		{name: "unsqueeze attr", op: "Unsqueeze", opset: 11, attrs: []*graph.Attribute{ia("axes", 1)}, in: []*tensor.Tensor{f32(sh(2), 1, 2)}, want: []*tensor.Tensor{f32(sh(2, 1), 1, 2)}},
		{name: "transpose default", op: "Transpose", in: []*tensor.Tensor{x}, want: []*tensor.Tensor{f32(sh(3, 2), 0, 3, 1, 4, 2, 5)}},
		{name: "transpose perm", op: "Transpose", attrs: []*graph.Attribute{ia("perm", 1, 0, 2)}, in: []*tensor.Tensor{f32(sh(1, 2, 2), 1, 2, 3, 4)}, want: []*tensor.Tensor{f32(sh(2, 1, 2), 1, 2, 3, 4)}},
		{name: "transpose bad perm", op: "Transpose", attrs: []*graph.Attribute{ia("perm", 0, 0)}, in: []*tensor.Tensor{x}, err: "permutation"},
		{name: "slice neg step", op: "Slice", in: []*tensor.Tensor{seq, i64(sh(1), 8), i64(sh(1), 1), i64(sh(1), 0), i64(sh(1), -3)}, want: []*tensor.Tensor{f32(sh(3), 8, 5, 2)}},
		{name: "slice reverse all", op: "Slice", in: []*tensor.Tensor{seq, i64(sh(1), -1), i64(sh(1), math.MinInt64), nil, i64(sh(1), -1)}, want: []*tensor.Tensor{f32(sh(10), 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)}},
		{name: "slice big end", op: "Slice", in: []*tensor.Tensor{x, i64(sh(1), 1), i64(sh(1), math.MaxInt64), i64(sh(1), 1)}, want: []*tensor.Tensor{f32(sh(2, 2), 1, 2, 4, 5)}},
		{name: "slice empty", op: "Slice", in: []*tensor.Tensor{seq, i64(sh(1), 5), i64(sh(1), 2)}, want: []*tensor.Tensor{f32(sh(0))}},
		{name: "slice opset 1", op: "Slice", opset: 1, attrs: []*graph.Attribute{ia("starts", 0, 1), ia("ends", 1, 3)}, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{f32(sh(1, 2), 1, 2)}},
		{name: "slice step 0", op: "Slice", in: []*tensor.Tensor{seq, i64(sh(1), 0), i64(sh(1), 2), nil, i64(sh(1), 0)}, err: "step 0"},
		{name: "gather axis 1 neg", op: "Gather", attrs: []*graph.Attribute{in1("axis", 1)}, in: []*tensor.Tensor{x, i64(sh(2), -1, 0)}, want: []*tensor.Tensor{f32(sh(2, 2), 2, 0, 5, 3)}},
		{name: "gather scalar index", op: "Gather", in: []*tensor.Tensor{x, i64(sh(), 1)}, want: []*tensor.Tensor{f32(sh(3), 3, 4, 5)}},
		{name: "gather int64 data", op: "Gather", in: []*tensor.Tensor{i64(sh(3), 7, 8, 9), &tensor.Tensor{DType: tensor.Int32, Shape: sh(2), Data: []int32{2, 0}}}, want: []*tensor.Tensor{i64(sh(2), 9, 7)}},
		{name: "gather range", op: "Gather", in: []*tensor.Tensor{x, i64(sh(1), 2)}, err: "out of range"},
		{name: "concat int64", op: "Concat", attrs: []*graph.Attribute{in1("axis", 0)}, in: []*tensor.Tensor{i64(sh(1), 1), i64(sh(2), 2, 3)}, want: []*tensor.Tensor{i64(sh(3), 1, 2, 3)}},
		{name: "concat axis -1", op: "Concat", attrs: []*graph.Attribute{in1("axis", -1)}, in: []*tensor.Tensor{x, f32(sh(2, 1), 9, 9)}, want: []*tensor.Tensor{f32(sh(2, 4), 0, 1, 2, 9, 3, 4, 5, 9)}},
		{name: "concat mismatch", op: "Concat", attrs: []*graph.Attribute{in1("axis", 0)}, in: []*tensor.Tensor{x, f32(sh(1, 2), 9, 9)}, err: "shape"},
		{name: "split equal", op: "Split", attrs: []*graph.Attribute{in1("axis", 1)}, in: []*tensor.Tensor{f32(sh(1, 4), 1, 2, 3, 4)}, want: []*tensor.Tensor{f32(sh(1, 2), 1, 2), f32(sh(1, 2), 3, 4)}},
		{name: "split input", op: "Split", opset: 13, in: []*tensor.Tensor{seq, i64(sh(2), 3, 7)}, want: []*tensor.Tensor{f32(sh(3), 0, 1, 2), f32(sh(7), 3, 4, 5, 6, 7, 8, 9)}},
		{name: "split attr", op: "Split", opset: 11, attrs: []*graph.Attribute{ia("split", 8, 2)}, in: []*tensor.Tensor{seq}, want: []*tensor.Tensor{f32(sh(8), 0, 1, 2, 3, 4, 5, 6, 7), f32(sh(2), 8, 9)}},
		{name: "split num_outputs", op: "Split", opset: 18, attrs: []*graph.Attribute{in1("num_outputs", 3)}, in: []*tensor.Tensor{f32(sh(5), 1, 2, 3, 4, 5)}, want: []*tensor.Tensor{f32(sh(2), 1, 2), f32(sh(2), 3, 4), f32(sh(1), 5)}},
		{name: "split bad sum", op: "Split", opset: 13, in: []*tensor.Tensor{seq, i64(sh(2), 3, 3)}, want: []*tensor.Tensor{nil, nil}, err: "sum"},
		{name: "expand", op: "Expand", in: []*tensor.Tensor{f32(sh(2, 1), 1, 2), i64(sh(3), 2, 1, 3)}, want: []*tensor.Tensor{f32(sh(2, 2, 3), 1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2)}},
		{name: "tile", op: "Tile", in: []*tensor.Tensor{f32(sh(2), 1, 2), i64(sh(1), 3)}, want: []*tensor.Tensor{f32(sh(6), 1, 2, 1, 2, 1, 2)}},
		{name: "shape start end", op: "Shape", attrs: []*graph.Attribute{in1("start", 1), in1("end", -1)}, in: []*tensor.Tensor{f32(sh(2, 3, 4, 5))}, want: []*tensor.Tensor{i64(sh(2), 3, 4)}},
		{name: "size", op: "Size", in: []*tensor.Tensor{x}, want: []*tensor.Tensor{i64(sh(), 6)}},
		{name: "constant ints", op: "Constant", attrs: []*graph.Attribute{ia("value_ints", 1, 2)}, want: []*tensor.Tensor{i64(sh(2), 1, 2)}},
		{name: "constant float", op: "Constant", attrs: []*graph.Attribute{graph.FloatAttr("value_float", 2.5)}, want: []*tensor.Tensor{f32(sh(), 2.5)}},
		{name: "constantofshape", op: "ConstantOfShape", attrs: []*graph.Attribute{graph.TensorAttr("value", i64(sh(1), 7))}, in: []*tensor.Tensor{i64(sh(2), 2, 1)}, want: []*tensor.Tensor{i64(sh(2, 1), 7, 7)}},
		{name: "constantofshape default", op: "ConstantOfShape", in: []*tensor.Tensor{i64(sh(1), 2)}, want: []*tensor.Tensor{f32(sh(2), 0, 0)}},
		{name: "range int", op: "Range", in: []*tensor.Tensor{i64(sh(), 10), i64(sh(), 4), i64(sh(), -3)}, want: []*tensor.Tensor{i64(sh(2), 10, 7)}},
		{name: "range float", op: "Range", in: []*tensor.Tensor{f32(sh(), 0), f32(sh(), 1), f32(sh(), 0.25)}, want: []*tensor.Tensor{f32(sh(4), 0, 0.25, 0.5, 0.75)}},
		{name: "range zero delta", op: "Range", in: []*tensor.Tensor{i64(sh(), 0), i64(sh(), 1), i64(sh(), 0)}, err: "delta"},
		{name: "range huge", op: "Range", in: []*tensor.Tensor{i64(sh(), 0), i64(sh(), math.MaxInt64), i64(sh(), 1)}, err: "too large"},
		{name: "range min to max", op: "Range", in: []*tensor.Tensor{i64(sh(), math.MinInt64), i64(sh(), math.MaxInt64), i64(sh(), math.MaxInt64)}, want: []*tensor.Tensor{i64(sh(3), math.MinInt64, -1, math.MaxInt64-1)}},
		{name: "range reverse huge", op: "Range", in: []*tensor.Tensor{i64(sh(), math.MaxInt64), i64(sh(), -1), i64(sh(), math.MinInt64)}, want: []*tensor.Tensor{i64(sh(1), math.MaxInt64)}},
		{name: "slice huge steps", op: "Slice", in: []*tensor.Tensor{seq, i64(sh(1), 3), i64(sh(1), math.MaxInt64), nil, i64(sh(1), math.MaxInt64)}, want: []*tensor.Tensor{f32(sh(1), 3)}},
		{name: "slice min step", op: "Slice", in: []*tensor.Tensor{seq, i64(sh(1), -1), i64(sh(1), math.MinInt64), nil, i64(sh(1), math.MinInt64)}, want: []*tensor.Tensor{f32(sh(1), 9)}},
		{name: "tile overflow", op: "Tile", in: []*tensor.Tensor{f32(sh(2), 1, 2), i64(sh(1), 1<<32)}, err: "repeats"},
		{name: "dropout mask", op: "Dropout", in: []*tensor.Tensor{f32(sh(2), 1, 2)}, want: []*tensor.Tensor{f32(sh(2), 1, 2), bools(sh(2), true, true)}},
		{name: "dropout training", op: "Dropout", in: []*tensor.Tensor{f32(sh(2), 1, 2), f32(sh(), 0.5), bools(sh(), true)}, err: "training"},
	})
}

func TestMoreOps(t *testing.T) {
	x := f32(sh(2, 3), 0, 1, 2, 3, 4, 5)
	checkCases(t, []opCase{
		{name: "depthtospace DCR", op: "DepthToSpace", attrs: []*graph.Attribute{in1("blocksize", 2)}, in: []*tensor.Tensor{f32(sh(1, 4, 1, 1), 1, 2, 3, 4)}, want: []*tensor.Tensor{f32(sh(1, 1, 2, 2), 1, 2, 3, 4)}},
		{name: "spacetodepth", op: "SpaceToDepth", attrs: []*graph.Attribute{in1("blocksize", 2)}, in: []*tensor.Tensor{f32(sh(1, 1, 2, 2), 1, 2, 3, 4)}, want: []*tensor.Tensor{f32(sh(1, 4, 1, 1), 1, 2, 3, 4)}},
		{name: "depthtospace channels", op: "DepthToSpace", attrs: []*graph.Attribute{in1("blocksize", 2)}, in: []*tensor.Tensor{f32(sh(1, 3, 1, 1), 1, 2, 3)}, err: "divisible"},
		{name: "gatherelements", op: "GatherElements", attrs: []*graph.Attribute{in1("axis", 1)}, in: []*tensor.Tensor{x, i64(sh(2, 2), 2, -3, 0, 1)}, want: []*tensor.Tensor{f32(sh(2, 2), 2, 0, 3, 4)}},
		{name: "gatherelements range", op: "GatherElements", in: []*tensor.Tensor{x, i64(sh(1, 1), 2)}, err: "out of range"},
		{name: "scatterelements add", op: "ScatterElements", attrs: []*graph.Attribute{in1("axis", 1), graph.StringAttr("reduction", "add")}, in: []*tensor.Tensor{x, i64(sh(1, 2), 0, 0), f32(sh(1, 2), 10, 20)}, want: []*tensor.Tensor{f32(sh(2, 3), 30, 1, 2, 3, 4, 5)}},
		{name: "gathernd", op: "GatherND", in: []*tensor.Tensor{x, i64(sh(2, 2), 1, 2, 0, 0)}, want: []*tensor.Tensor{f32(sh(2), 5, 0)}},
		{name: "scatternd", op: "ScatterND", in: []*tensor.Tensor{x, i64(sh(1, 1), 1), f32(sh(1, 3), 7, 8, 9)}, want: []*tensor.Tensor{f32(sh(2, 3), 0, 1, 2, 7, 8, 9)}},
		{name: "scatternd shape", op: "ScatterND", in: []*tensor.Tensor{x, i64(sh(1, 1), 1), f32(sh(1, 2), 7, 8)}, err: "updates shape"},
		{name: "trilu lower k", op: "Trilu", attrs: []*graph.Attribute{in1("upper", 0)}, in: []*tensor.Tensor{x, i64(sh(), 1)}, want: []*tensor.Tensor{f32(sh(2, 3), 0, 1, 0, 3, 4, 5)}},
		{name: "nonzero", op: "NonZero", in: []*tensor.Tensor{f32(sh(2, 2), 0, 1, 2, 0)}, want: []*tensor.Tensor{i64(sh(2, 2), 0, 1, 1, 0)}},
		{name: "onehot", op: "OneHot", in: []*tensor.Tensor{i64(sh(2), 1, -1), f32(sh(), 3), f32(sh(2), 0, 5)}, want: []*tensor.Tensor{f32(sh(2, 3), 0, 5, 0, 0, 0, 5)}},
		{name: "cumsum excl rev", op: "CumSum", attrs: []*graph.Attribute{in1("exclusive", 1), in1("reverse", 1)}, in: []*tensor.Tensor{f32(sh(3), 1, 2, 3), i64(sh(), 0)}, want: []*tensor.Tensor{f32(sh(3), 5, 3, 0)}},
		{name: "mod python sign", op: "Mod", in: []*tensor.Tensor{i64(sh(2), -7, 7), i64(sh(1), 3)}, want: []*tensor.Tensor{i64(sh(2), 2, 1)}},
		{name: "mod fmod", op: "Mod", attrs: []*graph.Attribute{in1("fmod", 1)}, in: []*tensor.Tensor{f32(sh(2), -7, 7), f32(sh(1), 3)}, want: []*tensor.Tensor{f32(sh(2), -1, 1)}},
		{name: "mod zero", op: "Mod", in: []*tensor.Tensor{i64(sh(1), 1), i64(sh(1), 0)}, err: "by zero"},
		{name: "isinf neg only", op: "IsInf", attrs: []*graph.Attribute{in1("detect_positive", 0)}, in: []*tensor.Tensor{f32(sh(3), inf, -inf, nan)}, want: []*tensor.Tensor{bools(sh(3), false, true, false)}},
		{name: "einsum matmul implicit", op: "Einsum", attrs: []*graph.Attribute{graph.StringAttr("equation", "ij,jk")}, in: []*tensor.Tensor{f32(sh(1, 2), 1, 2), f32(sh(2, 2), 1, 2, 3, 4)}, want: []*tensor.Tensor{f32(sh(1, 2), 7, 10)}},
		{name: "einsum diagonal", op: "Einsum", attrs: []*graph.Attribute{graph.StringAttr("equation", "ii->i")}, in: []*tensor.Tensor{f32(sh(2, 2), 1, 2, 3, 4)}, want: []*tensor.Tensor{f32(sh(2), 1, 4)}},
		{name: "einsum ellipsis transpose", op: "Einsum", attrs: []*graph.Attribute{graph.StringAttr("equation", "...ij->...ji")}, in: []*tensor.Tensor{f32(sh(1, 2, 2), 1, 2, 3, 4)}, want: []*tensor.Tensor{f32(sh(1, 2, 2), 1, 3, 2, 4)}},
		{name: "einsum broadcast", op: "Einsum", attrs: []*graph.Attribute{graph.StringAttr("equation", "...i,...i->...")}, in: []*tensor.Tensor{f32(sh(2, 2), 1, 2, 3, 4), f32(sh(1, 2), 1, 1)}, want: []*tensor.Tensor{f32(sh(2), 3, 7)}},
		{name: "einsum sizes", op: "Einsum", attrs: []*graph.Attribute{graph.StringAttr("equation", "ij,jk->ik")}, in: []*tensor.Tensor{f32(sh(1, 2), 1, 2), f32(sh(3, 2), 1, 2, 3, 4, 5, 6)}, err: "sizes"},
		{name: "shrink", op: "Shrink", attrs: []*graph.Attribute{graph.FloatAttr("lambd", 1), graph.FloatAttr("bias", 0.5)}, in: []*tensor.Tensor{f32(sh(3), -2, 0.5, 2)}, want: []*tensor.Tensor{f32(sh(3), -1.5, 0, 1.5)}},
	})
}

func TestCast(t *testing.T) {
	h := []float16.Float16{float16.Fromfloat32(1.5), float16.Fromfloat32(-2)}
	checkCases(t, []opCase{
		{name: "float to int truncates", op: "Cast", attrs: []*graph.Attribute{in1("to", int64(tensor.Int32))}, in: []*tensor.Tensor{f32(sh(3), 1.9, -1.9, 0)}, want: []*tensor.Tensor{{DType: tensor.Int32, Shape: sh(3), Data: []int32{1, -1, 0}}}},
		{name: "float to bool", op: "Cast", attrs: []*graph.Attribute{in1("to", int64(tensor.Bool))}, in: []*tensor.Tensor{f32(sh(3), 0.1, 0, nan)}, want: []*tensor.Tensor{bools(sh(3), true, false, true)}},
		{name: "bool to float", op: "Cast", attrs: []*graph.Attribute{in1("to", int64(tensor.Float32))}, in: []*tensor.Tensor{bools(sh(2), true, false)}, want: []*tensor.Tensor{f32(sh(2), 1, 0)}},
		{name: "float16 to float", op: "Cast", attrs: []*graph.Attribute{in1("to", int64(tensor.Float32))}, in: []*tensor.Tensor{{DType: tensor.Float16, Shape: sh(2), Data: h}}, want: []*tensor.Tensor{f32(sh(2), 1.5, -2)}},
		{name: "int64 to float16", op: "Cast", attrs: []*graph.Attribute{in1("to", int64(tensor.Float16))}, in: []*tensor.Tensor{i64(sh(2), 3, 2049)}, want: []*tensor.Tensor{{DType: tensor.Float16, Shape: sh(2), Data: []float16.Float16{float16.Fromfloat32(3), float16.Fromfloat32(2048)}}}},
		{name: "unsupported to", op: "Cast", attrs: []*graph.Attribute{in1("to", 16)}, in: []*tensor.Tensor{f32(sh(1), 1)}, err: "not supported"},
	})
}

func TestReductions(t *testing.T) {
	x := f32(sh(2, 3), 1, 2, 3, 4, 5, 6)
	x3 := f32(sh(2, 2, 2), 1, 2, 3, 4, 5, 6, 7, 8)
	checkCases(t, []opCase{
		{name: "sum axes input", op: "ReduceSum", opset: 13, in: []*tensor.Tensor{x, i64(sh(1), 1)}, want: []*tensor.Tensor{f32(sh(2, 1), 6, 15)}},
		{name: "sum all", op: "ReduceSum", opset: 13, attrs: []*graph.Attribute{in1("keepdims", 0)}, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{f32(sh(), 21)}},
		{name: "sum noop", op: "ReduceSum", opset: 13, attrs: []*graph.Attribute{in1("noop_with_empty_axes", 1)}, in: []*tensor.Tensor{x, i64(sh(0))}, want: []*tensor.Tensor{x}},
		{name: "mean attr", op: "ReduceMean", opset: 13, attrs: []*graph.Attribute{ia("axes", 0), in1("keepdims", 0)}, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{f32(sh(3), 2.5, 3.5, 4.5)}},
		{name: "mean axes 0,2", op: "ReduceMean", opset: 18, in: []*tensor.Tensor{x3, i64(sh(2), 0, -1)}, want: []*tensor.Tensor{f32(sh(1, 2, 1), 3.5, 5.5)}},
		{name: "max", op: "ReduceMax", opset: 13, attrs: []*graph.Attribute{ia("axes", 1)}, in: []*tensor.Tensor{f32(sh(2, 2), 1, nan, -3, -2)}, want: []*tensor.Tensor{f32(sh(2, 1), nan, -2)}},
		{name: "min int64", op: "ReduceMin", opset: 13, attrs: []*graph.Attribute{ia("axes", 0)}, in: []*tensor.Tensor{i64(sh(2), 5, -7)}, want: []*tensor.Tensor{i64(sh(1), -7)}},
		{name: "prod", op: "ReduceProd", opset: 13, attrs: []*graph.Attribute{in1("keepdims", 0)}, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{f32(sh(), 720)}},
		{name: "l2", op: "ReduceL2", opset: 13, attrs: []*graph.Attribute{ia("axes", 1)}, in: []*tensor.Tensor{f32(sh(1, 2), 3, 4)}, want: []*tensor.Tensor{f32(sh(1, 1), 5)}},
		{name: "sum empty", op: "ReduceSum", opset: 13, in: []*tensor.Tensor{f32(sh(2, 0)), i64(sh(1), 1)}, want: []*tensor.Tensor{f32(sh(2, 1), 0, 0)}},
		{name: "bad axis", op: "ReduceSum", opset: 13, in: []*tensor.Tensor{x, i64(sh(1), 2)}, err: "out of range"},
		{name: "argmax last", op: "ArgMax", attrs: []*graph.Attribute{in1("axis", 1), in1("select_last_index", 1)}, in: []*tensor.Tensor{f32(sh(2, 3), 3, 1, 3, 0, 5, 5)}, want: []*tensor.Tensor{i64(sh(2, 1), 2, 2)}},
		{name: "argmin first", op: "ArgMin", attrs: []*graph.Attribute{in1("keepdims", 0)}, in: []*tensor.Tensor{f32(sh(3), 2, 1, 1)}, want: []*tensor.Tensor{i64(sh(), 1)}},
		{name: "topk ties largest", op: "TopK", in: []*tensor.Tensor{f32(sh(4), 3, 1, 3, 2), i64(sh(1), 2)}, want: []*tensor.Tensor{f32(sh(2), 3, 3), i64(sh(2), 0, 2)}},
		{name: "topk smallest axis 0", op: "TopK", attrs: []*graph.Attribute{in1("axis", 0), in1("largest", 0)}, in: []*tensor.Tensor{f32(sh(3, 2), 5, 1, 4, 1, 6, 0), i64(sh(1), 2)}, want: []*tensor.Tensor{f32(sh(2, 2), 4, 0, 5, 1), i64(sh(2, 2), 1, 2, 0, 0)}},
		{name: "topk k too big", op: "TopK", in: []*tensor.Tensor{f32(sh(2), 1, 2), i64(sh(1), 3)}, want: []*tensor.Tensor{nil, nil}, err: "out of range"},
		{name: "softmax 13 axis 1", op: "Softmax", opset: 13, attrs: []*graph.Attribute{in1("axis", 1)}, in: []*tensor.Tensor{f32(sh(1, 2, 2), 0, 0, 0, float32(math.Log(3)))}, want: []*tensor.Tensor{f32(sh(1, 2, 2), 0.5, 0.25, 0.5, 0.75)}},
		{name: "softmax 11 flattens", op: "Softmax", opset: 11, attrs: []*graph.Attribute{in1("axis", 1)}, in: []*tensor.Tensor{f32(sh(1, 2, 2), 0, 0, 0, 0)}, want: []*tensor.Tensor{f32(sh(1, 2, 2), 0.25, 0.25, 0.25, 0.25)}},
		{name: "softmax large", op: "Softmax", in: []*tensor.Tensor{f32(sh(2), 1000, 1000)}, want: []*tensor.Tensor{f32(sh(2), 0.5, 0.5)}},
		{name: "logsoftmax", op: "LogSoftmax", in: []*tensor.Tensor{f32(sh(2), 0, 0)}, want: []*tensor.Tensor{f32(sh(2), float32(-math.Ln2), float32(-math.Ln2))}},
	})
}

// naiveAdd broadcasts by computing each output's input index from scratch.
func naiveAdd(a, b *tensor.Tensor, out []int) []float32 {
	n := prod(out)
	res := make([]float32, n)
	idx := func(shape []int, o int) int {
		off, mul := 0, 1
		rem := o
		for d := len(out) - 1; d >= 0; d-- {
			i := rem % out[d]
			rem /= out[d]
			k := d - (len(out) - len(shape))
			if k >= 0 {
				if shape[k] != 1 {
					off += i * mul
				}
				mul *= shape[k]
			}
		}
		return off
	}
	for o := 0; o < n; o++ {
		res[o] = a.F32()[idx(a.Shape, o)] + b.F32()[idx(b.Shape, o)]
	}
	return res
}

// TestBroadcastRandom checks the collapsed-row broadcasting against the
// per-element definition on random shape pairs and thread counts.
func TestBroadcastRandom(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	randShape := func(out []int) []int {
		k := r.Intn(len(out) + 1)
		s := append([]int(nil), out[len(out)-k:]...)
		for i := range s {
			if r.Intn(3) == 0 {
				s[i] = 1
			}
		}
		return s
	}
	for it := 0; it < 300; it++ {
		out := make([]int, 1+r.Intn(5))
		for i := range out {
			out[i] = 1 + r.Intn(4)
		}
		sa, sb := randShape(out), randShape(out)
		if r.Intn(2) == 0 {
			sa = out
		}
		mk := func(s []int) *tensor.Tensor {
			v := make([]float32, prod(s))
			for i := range v {
				v[i] = float32(r.Intn(100))
			}
			return f32(s, v...)
		}
		a, b := mk(sa), mk(sb)
		want, err := broadcastShape(sa, sb)
		if err != nil {
			t.Fatal(err)
		}
		got, err := runN("Add", 17, nil, 1, 1+it%3, a, b)
		if err != nil {
			t.Fatalf("%v + %v: %v", sa, sb, err)
		}
		if !tensor.SameShape(got[0].Shape, want) {
			t.Fatalf("%v + %v: shape %v, want %v", sa, sb, got[0].Shape, want)
		}
		if w := naiveAdd(a, b, want); !reflect.DeepEqual(got[0].F32(), w) {
			t.Fatalf("%v + %v: %v, want %v", sa, sb, got[0].F32(), w)
		}
	}
}

// TestThreadsIdentical: every parallel kernel gives bit-identical results
// for 1, 2 and 3 threads.
func TestThreadsIdentical(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	big := make([]float32, 3*64*33*17)
	for i := range big {
		big[i] = float32(r.NormFloat64())
	}
	x := f32(sh(3, 64, 33, 17), big...)
	bias := f32(sh(64, 1, 1), big[:64]...)
	cases := []struct {
		op    string
		attrs []*graph.Attribute
		in    []*tensor.Tensor
	}{
		{"Add", nil, []*tensor.Tensor{x, bias}},
		{"Mul", nil, []*tensor.Tensor{x, x}},
		{"Sigmoid", nil, []*tensor.Tensor{x}},
		{"HardSwish", nil, []*tensor.Tensor{x}},
		{"Softmax", []*graph.Attribute{in1("axis", 1)}, []*tensor.Tensor{x}},
		{"ReduceMean", []*graph.Attribute{ia("axes", 2, 3)}, []*tensor.Tensor{x}},
		{"ReduceSum", nil, []*tensor.Tensor{x, i64(sh(2), 0, 2)}},
		{"Clip", nil, []*tensor.Tensor{x, f32(sh(), -0.5), f32(sh(), 0.5)}},
	}
	for _, c := range cases {
		var ref []float32
		for threads := 1; threads <= 3; threads++ {
			out, err := runN(c.op, 17, c.attrs, 1, threads, c.in...)
			if err != nil {
				t.Fatalf("%s: %v", c.op, err)
			}
			got := out[0].F32()
			if threads == 1 {
				ref = got
				continue
			}
			for i := range ref {
				if math.Float32bits(got[i]) != math.Float32bits(ref[i]) {
					t.Fatalf("%s: threads=%d differs at %d: %v vs %v", c.op, threads, i, got[i], ref[i])
				}
			}
		}
	}
}

// TestNoPanicOnBadInput feeds every basic op malformed inputs: absent,
// wrong dtype, inconsistent data length, mismatched ranks. Each must return
// an error or a result, never panic.
func TestNoPanicOnBadInput(t *testing.T) {
	ops := []string{}
	for _, s := range runtime.Supported() {
		if !strings.Contains(s, ":") {
			ops = append(ops, s)
		}
	}
	bad := [][]*tensor.Tensor{
		nil,
		{nil},
		{nil, nil, nil},
		{{DType: tensor.Float32, Shape: sh(2, 2), Data: []float32{1}}},
		{f32(sh(2, 2), 1, 2, 3, 4), {DType: tensor.Int64, Shape: sh(3), Data: []int64{1}}},
		{f32(sh(2, 2), 1, 2, 3, 4), f32(sh(3), 1, 2, 3), f32(sh(5), 1, 2, 3, 4, 5)},
		{f32(sh(), 1), i64(sh(), 1), i64(sh(), -1), i64(sh(), 0), i64(sh(), 0)},
		{i64(sh(2), 1, 2), i64(sh(3), 1, 1, 1), i64(sh(1), -9)},
		{bools(sh(1), true), f32(sh(0)), f32(sh(0))},
		{f32(sh(0, 3)), i64(sh(2), -1, 0)},
		{f32(sh(2, 3), 1, 2, 3, 4, 5, 6), i64(sh(2), 1<<40, 1<<40)},
		{{DType: tensor.String, Shape: sh(1), Data: []string{"x"}}, i64(sh(1), 0)},
	}
	attrSets := [][]*graph.Attribute{
		nil,
		{in1("axis", 7), ia("axes", 9), ia("perm", 5, 5), in1("to", 1)},
		{in1("axis", -1), in1("keepdims", 0), ia("split", -1, 3)},
	}
	for _, op := range ops {
		for _, dt := range []tensor.DType{tensor.Float32, tensor.Int64, tensor.Bool} {
			f, ok := runtime.Lookup("", op, dt)
			if !ok {
				continue
			}
			for _, attrs := range attrSets {
				for _, in := range bad {
					func() {
						defer func() {
							if r := recover(); r != nil {
								t.Errorf("%s (%v) attrs %v inputs %v: panic %v", op, dt, attrs, in, r)
							}
						}()
						n := &graph.Node{OpType: op, Attrs: attrs}
						for range in {
							n.Inputs = append(n.Inputs, &graph.Value{Name: "i"})
						}
						n.Outputs = []*graph.Value{{Name: "o"}, {Name: "o2"}}
						k, err := f(n, 17)
						if err != nil || k == nil {
							return
						}
						_, _ = k.Run(&runtime.Context{Threads: 2}, in)
					}()
				}
			}
		}
	}
}

// TestTransposeRandom checks Transpose (strided copy with merged dims)
// against the index definition on random shapes and permutations.
func TestTransposeRandom(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	for it := 0; it < 200; it++ {
		rank := 1 + r.Intn(5)
		shape := make([]int, rank)
		for i := range shape {
			shape[i] = 1 + r.Intn(4)
			if it%2 == 1 && r.Intn(2) == 0 {
				shape[i] = 8 + r.Intn(30) // reaches the tiled path
			}
		}
		perm := r.Perm(rank)
		n := prod(shape)
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i)
		}
		p64 := make([]int64, rank)
		for i, p := range perm {
			p64[i] = int64(p)
		}
		got, err := run("Transpose", 13, []*graph.Attribute{ia("perm", p64...)}, f32(shape, x...))
		if err != nil {
			t.Fatal(err)
		}
		ist := stridesOf(shape)
		oshape := make([]int, rank)
		for i, p := range perm {
			oshape[i] = shape[p]
		}
		ost := stridesOf(oshape)
		g := got[0].F32()
		for o := 0; o < n; o++ {
			src := 0
			for i := range oshape {
				src += (o / ost[i] % oshape[i]) * ist[perm[i]]
			}
			if g[o] != x[src] {
				t.Fatalf("shape %v perm %v: out[%d] = %v, want %v", shape, perm, o, g[o], x[src])
			}
		}
	}
}
