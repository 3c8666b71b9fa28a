package basic

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/x448/float16"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/ortpeer"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// ortRun runs m (no graph inputs) in ONNX Runtime and returns its outputs,
// or skips t when ONNX Runtime is missing.
func ortRun(t *testing.T, m *model.Model) map[string]*tensor.Tensor {
	t.Helper()
	ortpeer.Need(t)
	mp := filepath.Join(t.TempDir(), "model.onnx")
	if err := model.Save(m, mp); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range m.Graph.Outputs {
		names = append(names, v.Name)
	}
	out, err := ortpeer.Run(t, mp, nil, names, "")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// filled makes a tensor of dt from float values (exact for every dtype
// used here).
func filled(t *testing.T, dt tensor.DType, shape []int, v []float64) *tensor.Tensor {
	x, err := tensor.New(dt, shape)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range v {
		switch d := x.Data.(type) {
		case []float32:
			d[i] = float32(f)
		case []float64:
			d[i] = f
		case []float16.Float16:
			d[i] = float16.Fromfloat32(float32(f))
		case []int8:
			d[i] = int8(f)
		case []uint8:
			d[i] = uint8(f)
		case []int16:
			d[i] = int16(f)
		case []uint16:
			d[i] = uint16(f)
		case []int32:
			d[i] = int32(f)
		case []uint32:
			d[i] = uint32(f)
		case []int64:
			d[i] = int64(f)
		case []uint64:
			d[i] = uint64(f)
		default:
			t.Fatalf("dtype %v", dt)
		}
	}
	return x
}

// TestScatterReductionVsORT runs ScatterElements and ScatterND with every
// reduction on every numeric dtype in ONNX Runtime and in our
// kernels. The data are near the small types' limits, so add and mul
// overflow (both wrap) and duplicate indices fold several updates into one
// element. Outputs of dtypes ort.js cannot write (uint32, uint64) go
// through a Cast to int64 on both sides.
func TestScatterReductionVsORT(t *testing.T) {
	g := &graph.Graph{Name: "scatter", Opsets: map[string]int64{"": 18}}
	nm := g.NewNamer()
	data := []float64{100, 3, 7, 120, 5, 9, 11, 2, 60, 1, 4, 90}
	upd := []float64{100, 20, 9, 3, 7, 13, 8, 6, 50}
	elemIdx := tensor.FromInt64([]int{3, 3}, []int64{0, 0, 3, 1, 2, 1, 3, 3, -1})
	ndIdx := tensor.FromInt64([]int{3, 1}, []int64{0, 2, 0})
	ndUpd := []float64{100, 20, 9, 3, 7, 13, 8, 6, 50, 2, 120, 5}
	// Not float16: ONNX Runtime has no float16 reductions to compare with.
	dtypes := []tensor.DType{tensor.Float32, tensor.Float64, tensor.Int8, tensor.Uint8,
		tensor.Int16, tensor.Uint16, tensor.Int32, tensor.Uint32, tensor.Int64, tensor.Uint64}
	scaled := func(v []float64, f float64) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = x * f
		}
		return out
	}
	type set struct {
		dt    tensor.DType
		scale float64
	}
	var sets []set
	for _, dt := range dtypes {
		sets = append(sets, set{dt, 1})
	}
	// Products that overflow the 32- and 64-bit types too.
	sets = append(sets, set{tensor.Int32, 700}, set{tensor.Uint32, 700}, set{tensor.Int64, 5e7}, set{tensor.Uint64, 5e7})
	for _, st := range sets {
		dt := st.dt
		tag := dt.String()
		if st.scale != 1 {
			tag += "_big"
		}
		x := g.AddInitializer(nm, "x_"+tag, filled(t, dt, []int{3, 4}, scaled(data, st.scale)))
		u := g.AddInitializer(nm, "u_"+tag, filled(t, dt, []int{3, 3}, scaled(upd, st.scale)))
		ui := g.AddInitializer(nm, "ui", elemIdx)
		nu := g.AddInitializer(nm, "nu_"+tag, filled(t, dt, []int{3, 4}, scaled(ndUpd, st.scale)))
		ni := g.AddInitializer(nm, "ni", ndIdx)
		for _, red := range []string{"none", "add", "mul", "max", "min"} {
			for _, op := range []string{"ScatterElements", "ScatterND"} {
				in := []*graph.Value{x, ni, nu}
				attrs := []*graph.Attribute{graph.StringAttr("reduction", red)}
				if op == "ScatterElements" {
					in = []*graph.Value{x, ui, u}
					attrs = append(attrs, graph.IntAttr("axis", 1))
				}
				name := fmt.Sprintf("%s_%s_%s", op, red, tag)
				n := nm.NewNode(op, name, in, 1, attrs...)
				n.Outputs[0].DType = dt
				g.Nodes = append(g.Nodes, n)
				y := n.Outputs[0]
				cast := map[tensor.DType]tensor.DType{tensor.Uint32: tensor.Int64, tensor.Uint64: tensor.Int64}
				if to, ok := cast[dt]; ok {
					c := nm.NewNode("Cast", "cast_"+name, []*graph.Value{y}, 1, graph.IntAttr("to", int64(to)))
					c.Outputs[0].DType = to
					g.Nodes = append(g.Nodes, c)
					y = c.Outputs[0]
				}
				y.Name = name
				g.Outputs = append(g.Outputs, y)
			}
		}
	}
	want := ortRun(t, &model.Model{IRVersion: 8, Graph: g})
	s, err := runtime.NewSession(g, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Run(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range g.Outputs {
		w, gt := want[o.Name], got[o.Name]
		if gt == nil || !tensor.SameShape(gt.Shape, w.Shape) || !reflect.DeepEqual(gt.Data, w.Data) {
			t.Errorf("%s: got %v, want %v", o.Name, gt, w)
		}
	}
}

// TestScatterReductionRefusesBool: bool data has no add/mul/max/min in
// our kernels (nor a reference to check one against), so a reduction on it
// is an error, not the silent copy it used to be.
func TestScatterReductionRefusesBool(t *testing.T) {
	x := tensor.MustNew(tensor.Bool, []int{2, 2})
	u := tensor.MustNew(tensor.Bool, []int{1, 2})
	u.Bools()[0] = true
	for _, c := range []struct {
		op    string
		idx   *tensor.Tensor
		attrs []*graph.Attribute
	}{
		{"ScatterElements", tensor.FromInt64([]int{1, 2}, []int64{1, 0}), []*graph.Attribute{graph.StringAttr("reduction", "add")}},
		{"ScatterND", tensor.FromInt64([]int{1, 1}, []int64{1}), []*graph.Attribute{graph.StringAttr("reduction", "max")}},
	} {
		_, err := run(c.op, 18, c.attrs, x, c.idx, u)
		if err == nil || !strings.Contains(err.Error(), "not defined for bool") {
			t.Errorf("%s: err = %v, want a refusal", c.op, err)
		}
	}
}
