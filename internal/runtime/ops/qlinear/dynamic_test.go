package qlinear

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/runtime/nodetest"
	"github.com/qtool/qtool/internal/simd/q8"
	"github.com/qtool/qtool/internal/tensor"
)

// dynStats accumulates agreement with ONNX Runtime over float outputs.
type dynStats struct {
	n, exact int
	maxAbs   float64
}

// runDynamicCase runs one testdata/dynamic folder through runtime.Session
// and compares every output with ONNX Runtime's element by element.
func runDynamicCase(dir string, threads int, st *dynStats) error {
	m, err := model.Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return err
	}
	sess, err := runtime.NewSession(m.Graph, runtime.Options{Threads: threads})
	if err != nil {
		return err
	}
	set := filepath.Join(dir, "test_data_set_0")
	inputs, err := nodetest.ReadInputs(set, sess.InputNames())
	if err != nil {
		return err
	}
	got, err := sess.Run(inputs)
	if err != nil {
		return err
	}
	for i, name := range sess.OutputNames() {
		want, err := nodetest.ReadOutput(set, i)
		if err != nil {
			return err
		}
		g := got[name]
		if g == nil || g.DType != tensor.Float32 || !tensor.SameShape(g.Shape, want.Shape) {
			return fmt.Errorf("output %q: got %v, want float32 %v", name, g, want.Shape)
		}
		for j, w := range want.F32() {
			d := math.Abs(float64(g.F32()[j]) - float64(w))
			st.n++
			if d == 0 {
				st.exact++
			}
			st.maxAbs = max(st.maxAbs, d)
			if d != 0 {
				return fmt.Errorf("output %q[%d]: got %v, want %v", name, j, g.F32()[j], w)
			}
		}
	}
	return nil
}

// TestDynamicORTGoldens runs the cases of testdata/gen_dynamic.py (outputs
// computed by ONNX Runtime on x86-64) through runtime.Session on every q8
// path, with 1 and 2 threads: every value must be bit-identical (the LSTM
// gates use MLAS's FMA approximations reproduced in Go, and math.FMA makes
// them the same on every architecture).
func TestDynamicORTGoldens(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/dynamic/*")
	if len(dirs) == 0 {
		t.Fatal("testdata/dynamic is empty: run testdata/gen_dynamic.py")
	}
	old := q8.ISA()
	defer q8.SetISA(old)
	var mm, lstm dynStats
	for _, isa := range q8.ISAs() {
		if err := q8.SetISA(isa); err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs {
			for _, threads := range []int{1, 2} {
				st := &lstm
				if strings.HasPrefix(filepath.Base(d), "dqmm") {
					st = &mm
				}
				if err := runDynamicCase(d, threads, st); err != nil {
					t.Errorf("%s [%s, %d threads]: %v", filepath.Base(d), isa, threads, err)
				}
			}
		}
	}
	for _, s := range []struct {
		name string
		st   dynStats
	}{{"DynamicQuantizeMatMul", mm}, {"DynamicQuantizeLSTM", lstm}} {
		if s.st.n == 0 {
			t.Errorf("%s: no values compared", s.name)
			continue
		}
		t.Logf("%s vs ONNX Runtime: %d values, %.2f%% bit-identical, max abs diff %.3g (paths %v)",
			s.name, s.st.n, 100*float64(s.st.exact)/float64(s.st.n), s.st.maxAbs, q8.ISAs())
	}
}

// TestDynamicErrors: bad inputs give errors, not panics.
func TestDynamicErrors(t *testing.T) {
	dir := "testdata/dynamic/lstm_rev_chan_init_lens"
	if _, err := os.Stat(dir); err != nil {
		t.Skip(err)
	}
	m, err := model.Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	sess, err := runtime.NewSession(m.Graph, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	x := &tensor.Tensor{DType: tensor.Float32, Shape: []int{6, 3, 9}, Data: make([]float32, 6*3*9)}
	h := &tensor.Tensor{DType: tensor.Float32, Shape: []int{1, 3, 12}, Data: make([]float32, 36)}
	cases := map[string]map[string]*tensor.Tensor{
		"wrong input size": {"x": {DType: tensor.Float32, Shape: []int{6, 3, 8}, Data: make([]float32, 6*3*8)}, "seq_lens": i32s(1, 2, 3), "h0": h, "c0": h},
		"long sequence":    {"x": x, "seq_lens": i32s(7, 2, 3), "h0": h, "c0": h},
		"bad h0":           {"x": x, "seq_lens": i32s(1, 2, 3), "h0": x, "c0": h},
	}
	nan := make([]float32, 6*3*9)
	nan[5] = float32(math.NaN())
	cases["NaN"] = map[string]*tensor.Tensor{"x": {DType: tensor.Float32, Shape: []int{6, 3, 9}, Data: nan}, "seq_lens": i32s(1, 2, 3), "h0": h, "c0": h}
	for name, in := range cases {
		if _, err := sess.Run(in); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func i32s(v ...int32) *tensor.Tensor {
	return &tensor.Tensor{DType: tensor.Int32, Shape: []int{len(v)}, Data: v}
}

// TestDynamicMatMulErrors: wrong shapes and non-finite activations are
// errors.
func TestDynamicMatMulErrors(t *testing.T) {
	m, err := model.Load("testdata/dynamic/dqmm_s8_percol/model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := runtime.NewSession(m.Graph, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	nan := make([]float32, 5*48)
	nan[7] = float32(math.Inf(1))
	for name, a := range map[string]*tensor.Tensor{
		"inner dimension": tensor.FromFloat32([]int{5, 47}, make([]float32, 5*47)),
		"infinity":        tensor.FromFloat32([]int{5, 48}, nan),
		"int8 A":          {DType: tensor.Int8, Shape: []int{5, 48}, Data: make([]int8, 5*48)},
	} {
		if _, err := sess.Run(map[string]*tensor.Tensor{"a": a}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestDynamicLSTMEmpty: empty sequences and batches give empty or zero
// outputs, not panics.
func TestDynamicLSTMEmpty(t *testing.T) {
	m, err := model.Load("testdata/dynamic/lstm_fwd_tensor/model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range m.Graph.Inputs {
		v.Shape = nil // the golden declares [5,3,10]
	}
	sess, err := runtime.NewSession(m.Graph, runtime.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, shape := range [][]int{{0, 3, 10}, {5, 0, 10}} {
		x := tensor.FromFloat32(shape, make([]float32, shape[0]*shape[1]*shape[2]))
		out, err := sess.Run(map[string]*tensor.Tensor{"x": x})
		if err != nil {
			t.Fatalf("%v: %v", shape, err)
		}
		yh := out["y_h"]
		if !tensor.SameShape(yh.Shape, []int{1, shape[1], 8}) {
			t.Errorf("%v: y_h shape %v", shape, yh.Shape)
		}
		for _, v := range yh.F32() {
			if v != 0 {
				t.Errorf("%v: y_h holds %v, want zeros", shape, v)
				break
			}
		}
	}
}
