package convert

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/runtime/qdq"
	"github.com/qtool/qtool/internal/tensor"
)

// moreOpsModel is opsModel for the ops of moreops.go: table activations,
// Resize (nearest and linear) and the four normalizations, each reading a
// quantized chain started by a Conv.
//
//	x[2,3,16,16] -> Conv -> HardSwish -> h;  Conv(h) + h -> BatchNormalization
//	-> Clip(0, 6) -> Resize nearest x2 -> Conv -> c;  Conv(c * HardSigmoid(c)) -> d
//	d -> each of Resize linear x0.5, InstanceNormalization, Tanh, Elu,
//	GroupNormalization, LayerNormalization -> an output
func moreOpsModel(t *testing.T) *model.Model {
	r := rand.New(rand.NewPCG(7, 8))
	randT := func(base, spread float64, shape ...int) *tensor.Tensor {
		n := 1
		for _, d := range shape {
			n *= d
		}
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(base + r.NormFloat64()*spread)
		}
		return tensor.FromFloat32(shape, x)
	}
	g := &graph.Graph{Name: "moreops", Opsets: map[string]int64{"": 18}}
	nm := g.NewNamer()
	x := &graph.Value{Name: "x", DType: tensor.Float32, Shape: graph.KnownShape(2, 3, 16, 16)}
	g.Inputs = []*graph.Value{x}
	add := func(op string, in []*graph.Value, attrs ...*graph.Attribute) *graph.Value {
		n := nm.NewNode(op, op, in, 1, attrs...)
		g.Nodes = append(g.Nodes, n)
		return n.Outputs[0]
	}
	c := func(name string, t *tensor.Tensor) *graph.Value { return g.AddInitializer(nm, name, t) }
	pad1 := graph.IntsAttr("pads", []int64{1, 1, 1, 1})
	h := add("HardSwish", []*graph.Value{add("Conv", []*graph.Value{x, c("w1", randT(0, 0.3, 8, 3, 3, 3)), c("b1", randT(0, 0.3, 8))}, pad1)})
	a := add("Add", []*graph.Value{add("Conv", []*graph.Value{h, c("w2", randT(0, 0.2, 8, 8, 3, 3))}, pad1), h})
	bn := add("BatchNormalization", []*graph.Value{a, c("bn_s", randT(1, 0.2, 8)), c("bn_b", randT(0, 0.2, 8)),
		c("bn_m", randT(0, 0.3, 8)), c("bn_v", randT(1, 0.1, 8))})
	cl := add("Clip", []*graph.Value{bn, c("lo", tensor.Scalar(0)), c("hi", tensor.Scalar(6))})
	empty := c("roi", tensor.FromFloat32([]int{0}, nil))
	up := add("Resize", []*graph.Value{cl, empty, c("up", tensor.FromFloat32([]int{4}, []float32{1, 1, 2, 2}))}, graph.StringAttr("mode", "nearest"))
	c3 := add("Conv", []*graph.Value{up, c("w3", randT(0, 0.2, 4, 8, 3, 3))}, pad1)
	m := add("Mul", []*graph.Value{c3, add("HardSigmoid", []*graph.Value{c3})})
	c4 := add("Conv", []*graph.Value{m, c("w4", randT(0, 0.3, 4, 4, 3, 3))}, pad1)
	// The branches read the same quantized tensor, so that each output
	// measures one op: a normalization multiplies an input difference by
	// input scale / (std · output scale), several LSB when stacked.
	g.Outputs = []*graph.Value{
		add("Resize", []*graph.Value{c4, empty, c("down", tensor.FromFloat32([]int{4}, []float32{1, 1, 0.5, 0.5}))}, graph.StringAttr("mode", "linear")),
		add("InstanceNormalization", []*graph.Value{c4, c("in_s", randT(1, 0.2, 4)), c("in_b", randT(0, 0.2, 4))}),
		add("Tanh", []*graph.Value{c4}),
		add("Elu", []*graph.Value{c4}),
		add("GroupNormalization", []*graph.Value{c4, c("gn_s", randT(1, 0.2, 2)), c("gn_b", randT(0, 0.2, 2))}, graph.IntAttr("num_groups", 2)),
		add("LayerNormalization", []*graph.Value{c4, c("ln_s", randT(1, 0.2, 32)), c("ln_b", randT(0, 0.2, 32))}),
	}
	return &model.Model{IRVersion: 8, Graph: g}
}

// TestSyntheticMoreOpsPeers converts moreOpsModel in QDQ and QOperator
// form: every new op is quantized, ONNX Runtime loads and runs the result,
// and our runtime (QDQ: after the integer rewrite, which must turn every one
// of them into an integer node) agrees with it within 1 LSB on 99.9% of
// the output.
func TestSyntheticMoreOpsPeers(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(9, 10))
	data := make([]float32, 64*3*16*16)
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	calib := filepath.Join(dir, "calib.npy")
	writeNpy(t, calib, tensor.FromFloat32([]int{64, 3, 16, 16}, data))
	eval := tensor.FromFloat32([]int{2, 3, 16, 16}, data[:2*3*16*16])
	newOps := []string{"HardSwish", "BatchNormalization", "Clip", "Resize", "HardSigmoid", "InstanceNormalization", "Tanh", "Elu", "GroupNormalization", "LayerNormalization"}
	// ort-default has uint8 activations, arm int8.
	for _, run := range [][2]string{{"ort-default", FormatQDQ}, {"ort-default", FormatQOperator}, {"arm", FormatQDQ}, {"arm", FormatQOperator}} {
		preset, format := run[0], run[1]
		cfg := loadPreset(t, preset)
		t.Run(preset+"/"+format, func(t *testing.T) {
			m := moreOpsModel(t)
			tab := calibrateGraph(t, m.Graph, calib, cfg, nil, 0, 0)
			rep, err := Static(m.Graph, tab, cfg, StaticOptions{Format: format})
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range newOps {
				if rep.Quantized[op] == 0 {
					t.Errorf("%s not quantized (report %v, float %v)", op, rep.Quantized, rep.Float)
				}
			}
			out := filepath.Join(dir, preset+"_"+format+".onnx")
			if err := model.Save(m, out); err != nil {
				t.Fatal(err)
			}
			feed := map[string]*tensor.Tensor{"x": eval}
			var names []string
			for _, v := range m.Graph.Outputs {
				names = append(names, v.Name)
			}
			ort, err := runORTLevel(t, out, feed, names, qdqLevel(format))
			if err != nil {
				t.Fatalf("ONNX Runtime: %v", err)
			}
			ours, err := tryOurs(out, feed)
			if err != nil {
				t.Fatal(err)
			}
			t.Log("unfused (DQ -> float op -> Q) run:")
			compareOutputs(t, ours, ort, rep.OutputScales)
			if format != FormatQDQ {
				return
			}
			lm, err := model.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			qrep, err := qdq.Rewrite(lm.Graph)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("rewrite: %v", qrep)
			for _, op := range []string{"LookupTable", "QLinearBatchNormalization", "QLinearInstanceNormalization",
				"QLinearGroupNormalization", "QLinearLayerNormalization"} {
				if qrep.Fused[op] == 0 {
					t.Errorf("rewrite made no %s", op)
				}
			}
			if qrep.Fused["Resize8"] != 2 || qrep.Tables["HardSwish"] != 1 || qrep.Tables["Clip"] != 1 {
				t.Errorf("rewrite: fused %v tables %v", qrep.Fused, qrep.Tables)
			}
			for _, op := range newOps {
				if qrep.Float[op] > 0 {
					t.Errorf("%s left in float by the rewrite", op)
				}
			}
			s, err := runtime.NewSession(lm.Graph, runtime.Options{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Run(feed)
			if err != nil {
				t.Fatal(err)
			}
			// The integer run is compared with ONNX Runtime's own QDQ fusions.
			ortFused, err := runORTLevel(t, out, feed, names, "all")
			if err != nil {
				t.Fatalf("ONNX Runtime: %v", err)
			}
			t.Log("integer run:")
			compareOutputs(t, got, ortFused, rep.OutputScales)
		})
	}
}

// TestMoreOpsExcluded checks that the config's op-type exclusions keep the
// new ops float, with the reason in the report, and the rest quantized.
func TestMoreOpsExcluded(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]float32, 8*3*16*16)
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	calib := filepath.Join(dir, "calib.npy")
	writeNpy(t, calib, tensor.FromFloat32([]int{8, 3, 16, 16}, data))
	cfg := loadPreset(t, "ort-default")
	cfg.Exclude.OpTypes = append(cfg.Exclude.OpTypes, "HardSwish", "LayerNormalization", "Resize")
	m := moreOpsModel(t)
	tab := calibrateGraph(t, m.Graph, calib, cfg, nil, 0, 0)
	rep, err := Static(m.Graph, tab, cfg, StaticOptions{Format: FormatQDQ})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"HardSwish", "LayerNormalization", "Resize"} {
		if rep.Quantized[op] != 0 {
			t.Errorf("excluded %s quantized", op)
		}
		found := false
		for _, f := range rep.Float {
			found = found || f.OpType == op && f.Reason == "excluded by the config"
		}
		if !found {
			t.Errorf("%s not reported as excluded: %v", op, rep.Float)
		}
	}
	for _, op := range []string{"Tanh", "InstanceNormalization", "GroupNormalization", "BatchNormalization"} {
		if rep.Quantized[op] == 0 {
			t.Errorf("%s not quantized", op)
		}
	}
}

// TestMobileNetV3Peers is the end-to-end check for hardswish and
// squeeze-excite hardsigmoid: MobileNetV3-small (random weights, made by
// tools/golden/qdq_ops_models.py --mobilenet-v3, 10 MB so not committed;
// QTOOL_MNV3 names it) fused, calibrated on random data, converted to QDQ,
// then run by our runtime after the integer rewrite and by ONNX Runtime
// with its QDQ fusions: every quantized activation (each QuantizeLinear
// output) within 1 LSB on at least 99.9% of elements.
func TestMobileNetV3Peers(t *testing.T) {
	path := os.Getenv("QTOOL_MNV3")
	if path == "" {
		t.Skip("QTOOL_MNV3 not set (tools/golden/qdq_ops_models.py --mobilenet-v3 DIR makes the model)")
	}
	needORT(t)
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(11, 12))
	const n = 8
	data := make([]float32, n*3*224*224)
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	calib := filepath.Join(dir, "calib.npy")
	writeNpy(t, calib, tensor.FromFloat32([]int{n, 3, 224, 224}, data))
	m := loadFused(t, path)
	cfg := loadPreset(t, "x86")
	tab := calibrateGraph(t, m.Graph, calib, cfg, nil, 0, 0)
	rep, err := Static(m.Graph, tab, cfg, StaticOptions{Format: FormatQDQ})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Quantized["HardSwish"] == 0 || rep.Quantized["HardSigmoid"] == 0 {
		t.Fatalf("hardswish/hardsigmoid not quantized: %v", rep.Quantized)
	}
	var names []string
	for _, nd := range m.Graph.Nodes {
		if nd.OpType == "QuantizeLinear" && nd.Input(2) != nil && nd.Input(2).Const != nil {
			v := nd.Outputs[0]
			v.DType = nd.Input(2).Const.DType
			m.Graph.Outputs = append(m.Graph.Outputs, v)
			names = append(names, v.Name)
		}
	}
	out := filepath.Join(dir, "mnv3.qdq.onnx")
	if err := model.Save(m, out); err != nil {
		t.Fatal(err)
	}
	feed := map[string]*tensor.Tensor{m.Graph.Inputs[0].Name: tensor.FromFloat32([]int{1, 3, 224, 224}, data[:3*224*224])}
	ort, err := runORTLevel(t, out, feed, names, "all")
	if err != nil {
		t.Fatal(err)
	}
	lm, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	qrep, err := qdq.Rewrite(lm.Graph)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rewrite: %v", qrep)
	if qrep.Tables["HardSwish"] != rep.Quantized["HardSwish"] || qrep.Tables["HardSigmoid"] != rep.Quantized["HardSigmoid"] || qrep.Float["HardSwish"]+qrep.Float["HardSigmoid"] > 0 {
		t.Errorf("rewrite: tables %v, float %v", qrep.Tables, qrep.Float)
	}
	s, err := runtime.NewSession(lm.Graph, runtime.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Run(feed)
	if err != nil {
		t.Fatal(err)
	}
	within, total, worst := 0, 0, 0.0
	for _, name := range names {
		a, err1 := got[name].AsFloat64()
		b, err2 := ort[name].AsFloat64()
		if err1 != nil || err2 != nil || len(a) != len(b) {
			t.Fatalf("%s: %v %v", name, err1, err2)
		}
		for i := range a {
			d := math.Abs(a[i] - b[i])
			if d <= 1 {
				within++
			}
			worst = max(worst, d)
		}
		total += len(a)
	}
	t.Logf("%d quantized activations: %d/%d elements within 1 LSB of ONNX Runtime (%.4f%%), worst %.0f", len(names), within, total, 100*float64(within)/float64(total), worst)
	if float64(within) < 0.999*float64(total) {
		t.Errorf("only %d of %d within 1 LSB", within, total)
	}
}
