package qlinear

import (
	"bytes"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// TestPlanTables checks the tables built at plan time from constant qparams
// (QLinearSigmoid, QLinearLeakyRelu, QLinearConcat, com.qtool
// QLinearBatchNormalization, short and long planes) against the tables a
// run builds (the same node with the qparams not constant), uint8 and
// int8, and that a run whose qparam inputs are other tensors than the
// plan-time constants (an overridden initializer) uses those, not the
// stale table.
func TestPlanTables(t *testing.T) {
	zp := func(dt tensor.DType, v int) *tensor.Tensor {
		z := tensor.MustNew(dt, []int{})
		if dt == tensor.Int8 {
			z.I8()[0] = int8(v - 128)
		} else {
			z.U8()[0] = uint8(v)
		}
		return z
	}
	codes := func(dt tensor.DType, shape []int, seed int) *tensor.Tensor {
		x := tensor.MustNew(dt, shape)
		b := bytesOf(x)
		for i := range b {
			b[i] = uint8(i*seed + i>>3)
		}
		return x
	}
	type tc struct {
		op    string
		dom   string
		attrs []*graph.Attribute
		in    func(dt tensor.DType, alt bool) []*tensor.Tensor
		data  []int // inputs that are data, never constant
	}
	s := func(alt bool, v, w float32) *tensor.Tensor {
		if alt {
			return tensor.Scalar(w)
		}
		return tensor.Scalar(v)
	}
	z := func(dt tensor.DType, alt bool, v, w int) *tensor.Tensor {
		if alt {
			return zp(dt, w)
		}
		return zp(dt, v)
	}
	cases := []tc{
		{op: "QLinearSigmoid", data: []int{0}, in: func(dt tensor.DType, alt bool) []*tensor.Tensor {
			return []*tensor.Tensor{codes(dt, []int{3, 700}, 7), s(alt, 0.05, 0.03), z(dt, alt, 120, 140), s(alt, 1.0/256, 1.0/200), z(dt, alt, 0, 10)}
		}},
		{op: "QLinearLeakyRelu", data: []int{0}, attrs: []*graph.Attribute{{Name: "alpha", Type: graph.AttrFloat, F: 0.1}},
			in: func(dt tensor.DType, alt bool) []*tensor.Tensor {
				return []*tensor.Tensor{codes(dt, []int{2, 300}, 5), s(alt, 0.02, 0.04), z(dt, alt, 128, 100), s(alt, 0.015, 0.02), z(dt, alt, 130, 90)}
			}},
		{op: "QLinearConcat", data: []int{2, 5}, attrs: []*graph.Attribute{{Name: "axis", Type: graph.AttrInt, I: 1}},
			in: func(dt tensor.DType, alt bool) []*tensor.Tensor {
				return []*tensor.Tensor{s(alt, 0.03, 0.05), z(dt, alt, 128, 120),
					codes(dt, []int{2, 3, 40}, 3), s(alt, 0.02, 0.01), z(dt, alt, 100, 150),
					codes(dt, []int{2, 5, 40}, 11), s(alt, 0.03, 0.05), z(dt, alt, 128, 120)}
			}},
	}
	vec := func(alt bool, v ...float32) *tensor.Tensor {
		if alt {
			w := append([]float32(nil), v...)
			w[0] *= 1.5
			v = w
		}
		return tensor.FromFloat32([]int{len(v)}, v)
	}
	for _, shape := range [][]int{{2, 3, 10}, {1, 3, 300}} {
		cases = append(cases, tc{op: "QLinearBatchNormalization", dom: QtoolDomain, data: []int{0},
			in: func(dt tensor.DType, alt bool) []*tensor.Tensor {
				return []*tensor.Tensor{codes(dt, shape, 13), s(alt, 0.04, 0.05), z(dt, alt, 128, 120), s(alt, 0.03, 0.02), z(dt, alt, 125, 130),
					vec(alt, 1.5, 0.7, -0.9), vec(alt, 0.1, -0.2, 0.3), vec(alt, 0.5, -1, 0.25), vec(alt, 2, 0.5, 1.25)}
			}})
	}
	run := func(c tc, dt tensor.DType, plan, in []*tensor.Tensor) (runtime.Kernel, []byte) {
		t.Helper()
		dom := MicrosoftDomain
		if c.dom != "" {
			dom = c.dom
		}
		n := &graph.Node{OpType: c.op, Domain: dom, Attrs: c.attrs, Outputs: []*graph.Value{{Name: "y"}}}
		for i := range in {
			v := &graph.Value{Name: "in"}
			isData := false
			for _, d := range c.data {
				isData = isData || d == i
			}
			if plan != nil && !isData {
				v.Const = plan[i]
			}
			n.Inputs = append(n.Inputs, v)
		}
		f, ok := runtime.Lookup(dom, c.op, dt)
		if !ok {
			t.Fatalf("%s not registered", c.op)
		}
		k, err := f(n, 1)
		if err != nil {
			t.Fatal(err)
		}
		out, err := k.Run(&runtime.Context{Threads: 2}, in)
		if err != nil {
			t.Fatalf("%s %v: %v", c.op, dt, err)
		}
		return k, append([]byte(nil), bytesOf(out[0])...)
	}
	for _, c := range cases {
		for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
			in, alt := c.in(dt, false), c.in(dt, true)
			k, got := run(c, dt, in, in)
			_, want := run(c, dt, nil, in)
			if !bytes.Equal(got, want) {
				t.Errorf("%s %v: plan-time table differs from the run's", c.op, dt)
			}
			var tabs []*planTable
			switch k := k.(type) {
			case *lookupKernel:
				tabs = []*planTable{k.plan}
			case *concatKernel:
				tabs = k.tables
			case *qlinearNorm:
				if k.bn.get(in, dt, 3) == nil {
					t.Errorf("%s %v: tables not built at plan time", c.op, dt)
				}
			}
			for i, p := range tabs {
				if p.get(in, dt) == nil {
					t.Errorf("%s %v: table %d not built at plan time", c.op, dt, i)
				}
			}
			// The same kernel run on other qparams: the run's own table.
			for _, d := range c.data {
				alt[d] = in[d]
			}
			_, got = run(c, dt, in, alt)
			_, want = run(c, dt, nil, alt)
			if !bytes.Equal(got, want) {
				t.Errorf("%s %v: overridden qparams ran the plan-time table", c.op, dt)
			}
			if bytes.Equal(got, func() []byte { _, b := run(c, dt, nil, in); return b }()) {
				t.Errorf("%s %v: the alternative qparams change nothing", c.op, dt)
			}
		}
	}
}
