package qdq

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/qtool/qtool/internal/npy"
)

// opsCase is one model of tools/golden/qdq_ops_models.py with what the
// rewrite must make of it.
type opsCase struct {
	name string
	// fused: integer node type → minimum count; float: op type → exact
	// count left in float.
	fused map[string]int
	float map[string]int
	// exact: the rewritten run must equal the unfused DQ → op → Q run
	// bit for bit (table ops); otherwise within 1 LSB on floatMin of the
	// elements.
	exact    bool
	floatMin float64
}

func opsCases() []opsCase {
	var out []opsCase
	for _, sfx := range []string{"u8", "s8"} {
		out = append(out,
			opsCase{name: "qdq_act_" + sfx, exact: true,
				// HardSwish x2, HardSigmoid x2, Elu, Tanh, Softplus, Clip x2.
				fused: map[string]int{"LookupTable": 9, "QLinearLeakyRelu": 1, "QLinearAdd": 1},
				float: map[string]int{}},
			opsCase{name: "qdq_resize_" + sfx, floatMin: 1,
				fused: map[string]int{"Resize8": 11},
				float: map[string]int{"Resize": 1}},
			opsCase{name: "qdq_norm_" + sfx, floatMin: 0.999,
				fused: map[string]int{"QLinearBatchNormalization": 1, "QLinearInstanceNormalization": 1,
					"QLinearLayerNormalization": 2, "QLinearGroupNormalization": 1},
				float: map[string]int{}},
		)
	}
	return out
}

// TestQDQOpsModels runs each model three ways (rewritten, unfused, ONNX
// Runtime) and checks the rewrite fired, the rewritten run against the
// unfused one (exact for table ops) and against ONNX Runtime (within 1 LSB
// on at least 99.9% of every quantized activation).
func TestQDQOpsModels(t *testing.T) {
	for _, c := range opsCases() {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join("testdata", c.name+".onnx")
			inPath := filepath.Join("testdata", c.name+".input.npy")
			in, err := npy.ReadFile(inPath)
			if err != nil {
				t.Fatal(err)
			}
			plain := withQOutputs(t, path)
			ref := runOurs(t, plain.Graph, in)
			rw := withQOutputs(t, path)
			rep, err := Rewrite(rw.Graph)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%v tables%v", rep, rep.Tables)
			for op, n := range c.fused {
				if got := rep.Fused[op] + rep.Passthrough[op]; got < n {
					t.Errorf("%s: %d made, want at least %d", op, got, n)
				}
			}
			for op, n := range c.float {
				if rep.Float[op] != n {
					t.Errorf("%d %s left in float, want %d", rep.Float[op], op, n)
				}
			}
			for op, n := range rep.Float {
				if _, ok := c.float[op]; !ok && n > 0 {
					t.Errorf("%d %s left in float", n, op)
				}
			}
			got := runOurs(t, rw.Graph, in)
			w, n, md := agreement(t, plain.Graph, got, ref)
			t.Logf("rewritten vs DQ->float->Q: %d/%d within 1 LSB, max %d LSB", w, n, md)
			if c.exact {
				for k, a := range ref {
					if b := got[k]; b == nil || !reflect.DeepEqual(a.Data, b.Data) {
						t.Errorf("output %s differs from the unfused run", k)
					}
				}
			} else if float64(w) < c.floatMin*float64(n) {
				t.Errorf("rewritten vs unfused: only %d of %d within 1 LSB", w, n)
			}
			script := ortScript()
			if script == "" {
				t.Skip("ONNX Runtime peer (tools/peers, npm onnxruntime-node) not installed")
			}
			ort := runORT(t, plain, inPath)
			w, n, md = agreement(t, plain.Graph, got, ort)
			t.Logf("rewritten vs ONNX Runtime: %d/%d within 1 LSB (%.3f%%), max %d LSB", w, n, 100*float64(w)/float64(n), md)
			if float64(w) < 0.999*float64(n) {
				t.Errorf("rewritten vs ONNX Runtime: only %d of %d within 1 LSB", w, n)
			}
		})
	}
}
