package convert

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/calibrate"
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/tensor"
)

// firstConv is the stem convolution: the first Conv in graph order.
func firstConv(t testing.TB, g *graph.Graph) *graph.Node {
	for _, n := range g.Nodes {
		if n.OpType == "Conv" {
			return n
		}
	}
	t.Fatal("no Conv")
	return nil
}

// a16Stem is the x86 preset with the stem Conv's activations in dt.
func a16Stem(t testing.TB, g *graph.Graph, dt string) Config {
	cfg := loadPreset(t, "x86")
	cfg.Weight.Rounding = "nearest" // GPTQ is orthogonal here and slow
	cfg.Nodes = append(cfg.Nodes, Override{Name: firstConv(t, g).Name, Activation: ActivationSpec{DType: dt}})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestA16StemPeers converts mnist-8 and squeezenet-cifar10 with the x86
// preset and a 16-bit stem Conv: the table holds 16-bit entries for the
// stem's input, output and the MaxPool after it, the model carries
// com.microsoft Q/DQ with 16-bit zero points there (opset < 21), ONNX
// Runtime runs it, and our runtime agrees within 1 output step on 99.9%.
func TestA16StemPeers(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	for _, pc := range peerCases(t) {
		if pc.name != "mnist-8" && pc.name != "squeezenet-cifar10" {
			continue
		}
		for _, c := range []struct{ dt, format string }{{"quint16", FormatQDQ}, {"qint16", FormatQDQ}, {"quint16", FormatQOperator}} {
			dt, format := c.dt, c.format
			if dt == "qint16" && pc.name != "mnist-8" {
				continue
			}
			t.Run(pc.name+"/"+dt+"/"+format, func(t *testing.T) {
				calib := filepath.Join(dir, pc.name+".calib.npy")
				writeNpy(t, calib, pc.calib)
				m := loadFused(t, pc.path)
				cfg := a16Stem(t, m.Graph, dt)
				want := cfg.Nodes[len(cfg.Nodes)-1].Activation.ActDType()
				stem := firstConv(t, m.Graph)
				tab := calibrateGraph(t, m.Graph, calib, cfg, nil, 0, 0)
				checkEntry := func(v *graph.Value, dt tensor.DType) {
					t.Helper()
					e := tab.Lookup(v.Name)
					if e == nil {
						t.Fatalf("no table entry for %q", v.Name)
					}
					if got, _ := e.DTypeOf(); got != dt {
						t.Fatalf("table entry %q is %s, want %v", v.Name, e.DType, dt)
					}
				}
				checkEntry(stem.Inputs[0], want)
				checkEntry(stem.Outputs[0], want)
				n16 := 0
				for _, e := range tab.Tensors {
					if dt, _ := e.DTypeOf(); dt == want {
						n16++
					}
				}
				rep, err := Static(m.Graph, tab, cfg, StaticOptions{Format: format})
				if err != nil {
					t.Fatal(err)
				}
				ms, q16, q8, qlinear := 0, 0, 0, 0
				for _, n := range m.Graph.Nodes {
					if strings.HasPrefix(n.OpType, "QLinear") || n.OpType == "QGemm" {
						qlinear++
					}
					if n.OpType != "QuantizeLinear" {
						continue
					}
					zdt := n.Inputs[2].Const.DType
					switch {
					case zdt == want && n.Domain == MSDomain:
						ms++
						q16++
					case zdt == want:
						t.Errorf("%v: 16-bit QuantizeLinear in domain %q at opset %d", n, n.Domain, m.Graph.Opsets[""])
					default:
						q8++
					}
				}
				t.Logf("%d table entries %v of %d; %d com.microsoft 16-bit Q, %d 8-bit Q; quantized %v", n16, want, len(tab.Tensors), q16, q8, rep.Quantized)
				if rep.Activations16 != q16 {
					t.Errorf("report counts %d 16-bit activations, the graph quantizes %d", rep.Activations16, q16)
				}
				if q16 < 2 || q8 < 1 {
					t.Fatalf("want both 16-bit and 8-bit Q/DQ, got %d and %d", q16, q8)
				}
				if (format == FormatQOperator) != (qlinear > 0) {
					t.Fatalf("%s form with %d QLinear operators", format, qlinear)
				}
				out := filepath.Join(dir, pc.name+"."+dt+"."+format+".onnx")
				if err := model.Save(m, out); err != nil {
					t.Fatal(err)
				}
				in := map[string]*tensor.Tensor{m.Graph.Inputs[0].Name: pc.eval}
				var names []string
				for _, v := range m.Graph.Outputs {
					names = append(names, v.Name)
				}
				ours, err := tryOurs(out, in)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := runORT(t, out, in, names); err != nil {
					t.Fatalf("ONNX Runtime (all optimizations): %v", err)
				}
				level := "disabled" // QDQ as written: DQ → float op → Q, as ours runs it
				if format == FormatQOperator {
					level = "all"
				}
				ort, err := runORTLevel(t, out, in, names, level)
				if err != nil {
					t.Fatalf("ONNX Runtime: %v", err)
				}
				compareOutputs(t, ours, ort, rep.OutputScales)
			})
		}
	}
}

// TestA16SyntheticPeers quantizes every op of opsModel with 16-bit
// activations (symmetric qint16 and affine quint16): at opset 13 the
// pairs are com.microsoft Q/DQ, at opset 21 ai.onnx ones; ONNX Runtime
// and our runtime agree within one output step on 99.9% of elements.
func TestA16SyntheticPeers(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(5, 6))
	data := make([]float32, 64*2*3*8*8)
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	calib := filepath.Join(dir, "calib.npy")
	writeNpy(t, calib, tensor.FromFloat32([]int{128, 3, 8, 8}, data))
	eval := tensor.FromFloat32([]int{2, 3, 8, 8}, data[:2*3*8*8])
	for _, c := range []struct {
		dt, scheme string
		opset      int64
		format     string
	}{{"quint16", "affine", 13, FormatQDQ}, {"qint16", "symmetric", 13, FormatQDQ}, {"quint16", "affine", 21, FormatQDQ},
		{"qint16", "affine", 13, FormatQOperator}} {
		name := fmt.Sprintf("%s-%s-opset%d-%s", c.dt, c.scheme, c.opset, c.format)
		t.Run(name, func(t *testing.T) {
			cfg := loadPreset(t, "ort-default")
			cfg.Activation.DType, cfg.Activation.Scheme = c.dt, c.scheme
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			m := opsModel(t)
			if err := raiseOpset(m.Graph, c.opset); err != nil {
				t.Fatal(err)
			}
			tab := calibrateGraph(t, m.Graph, calib, cfg, nil, 0, 0)
			rep, err := Static(m.Graph, tab, cfg, StaticOptions{Format: c.format})
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range []string{"Conv", "LeakyRelu", "AveragePool", "Sigmoid", "Mul", "Gemm", "MatMul"} {
				if rep.Quantized[op] == 0 {
					t.Errorf("%s not quantized (report %v, float %v)", op, rep.Quantized, rep.Float)
				}
			}
			wantDomain := MSDomain
			if c.opset >= 21 {
				wantDomain = ""
			}
			want := cfg.Activation.ActDType()
			nq := 0
			for _, n := range m.Graph.Nodes {
				if n.OpType != "QuantizeLinear" && n.OpType != "DequantizeLinear" {
					continue
				}
				if z := n.Input(2); z != nil && z.Const != nil && is16(z.Const.DType) {
					nq++
					if z.Const.DType != want || n.Domain != wantDomain {
						t.Fatalf("%v: zero point %v in domain %q, want %v in %q", n, z.Const.DType, n.Domain, want, wantDomain)
					}
				} else if n.OpType == "QuantizeLinear" {
					t.Fatalf("%v: an 8-bit activation in an all-16-bit config", n)
				}
			}
			if nq < 10 {
				t.Fatalf("only %d 16-bit Q/DQ nodes", nq)
			}
			out := filepath.Join(dir, name+".onnx")
			if err := model.Save(m, out); err != nil {
				t.Fatal(err)
			}
			in := map[string]*tensor.Tensor{"x": eval}
			agreeWithORT(t, out, in, []string{"MatMul_out0"}, "disabled", rep.OutputScales)
		})
	}
}

// TestA16Errors: combinations that have no meaning are refused with the
// reason, and a table calibrated at another bit width is an error, not a
// node quietly left float.
func TestA16Errors(t *testing.T) {
	tr := true
	for name, c := range map[string]Config{
		"reduce_range quint16":     {Activation: ActivationSpec{DType: "quint16", ReduceRange: &tr}},
		"global reduce_range+node": {Activation: ActivationSpec{ReduceRange: &tr}, Nodes: []Override{{Name: "conv*", Activation: ActivationSpec{DType: "qint16"}}}},
		"dynamic quint16":          {Mode: ModeDynamic, Activation: ActivationSpec{DType: "quint16"}},
		"quint32":                  {Activation: ActivationSpec{DType: "quint32"}},
	} {
		raw := map[string]any{}
		b, _ := json.Marshal(c)
		_ = json.Unmarshal(b, &raw)
		_, err := DecodeConfig(raw)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		t.Logf("%s: %v", name, err)
	}

	// The mode given to Static is checked too.
	cfg := loadPreset(t, "ort-default")
	cfg.Activation.DType = "quint16"
	dyn := cfg
	dyn.Mode = ModeDynamic
	if _, err := Static(opsModel(t).Graph, nil, dyn, StaticOptions{}); err == nil || !strings.Contains(err.Error(), "static") {
		t.Errorf("dynamic with quint16: %v", err)
	}

	// An 8-bit table with a 16-bit config, and the reverse.
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(7, 8))
	data := make([]float32, 16*3*8*8)
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	calib := filepath.Join(dir, "calib.npy")
	writeNpy(t, calib, tensor.FromFloat32([]int{16, 3, 8, 8}, data))
	c8 := loadPreset(t, "ort-default")
	tab8 := calibrateGraph(t, opsModel(t).Graph, calib, c8, nil, 0, 0)
	tab16 := calibrateGraph(t, opsModel(t).Graph, calib, cfg, nil, 0, 0)
	for _, c := range []struct {
		name string
		tab  *calibrate.Table
		cfg  Config
	}{{"8-bit table, 16-bit config", tab8, cfg}, {"16-bit table, 8-bit config", tab16, c8}} {
		_, err := Static(opsModel(t).Graph, c.tab, c.cfg, StaticOptions{})
		if err == nil || !strings.Contains(err.Error(), "recalibrate") {
			t.Errorf("%s: %v", c.name, err)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
}

// TestAccuracyA16SqueezeNet measures what 16-bit activations buy on
// squeezenet-cifar10, with TestAccuracySqueezeNet's split (calibrated on
// 100 JPEGs per class, evaluated on the other 9,000 with
// QTOOL_ACCURACY=full, every 9th of them otherwise): the x86 preset, the
// x86 preset with the stem Conv at quint16 (its input, output and the
// MaxPool after it), and every activation at quint16 (A16W8), all with
// GPTQ weights as the preset has them. Top-1 agreement with float, ours
// and ONNX Runtime's. Needs QTOOL_ACCURACY (make accuracy): three
// calibrations and GPTQ runs are too slow for go test.
func TestAccuracyA16SqueezeNet(t *testing.T) {
	if os.Getenv("QTOOL_ACCURACY") == "" {
		t.Skip("set QTOOL_ACCURACY (make accuracy)")
	}
	path := shared(t, "models/squeezenet-cifar10/squeezenet_cifar10.onnx")
	fm, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	calX, evalX, evLabels := cifarSplit(t, fm.Graph)
	dir := t.TempDir()
	calib := filepath.Join(dir, "calib.npy")
	writeNpy(t, calib, calX)
	input := fm.Graph.Inputs[0].Name
	const batch = 100
	ref := classify(t, fm.Graph, input, evalX, batch)
	floatAcc, _ := score(ref, ref, evLabels)
	var calBatches []map[string]*tensor.Tensor
	for lo := 0; lo < calX.Shape[0]; lo += batch {
		calBatches = append(calBatches, map[string]*tensor.Tensor{input: rows(calX, lo, min(lo+batch, calX.Shape[0]))})
	}
	var rowsOut []accRow
	for _, name := range []string{"x86", "x86+a16 stem", "a16w8", "x86+a16 auto1", "x86+a16 auto2"} {
		m := loadFused(t, path)
		cfg := loadPreset(t, "x86")
		var autoTab *calibrate.Table
		switch name {
		case "x86+a16 auto1", "x86+a16 auto2":
			// What qtool quantize --a16-auto N does: both tables on the
			// calibration images, candidates scored on 128 of them.
			tab8 := calibrateGraph(t, m.Graph, calib, cfg, nil, 0, 0)
			tab16 := calibrateGraph(t, m.Graph, calib, A16CalibrationConfig(cfg), nil, 0, 0)
			fb, err := model.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			clone := model.GraphCloner(fb)
			wr, err := OptimizeWeights(context.Background(), m.Graph, calBatches, cfg, RoundingOptions{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			res, err := SelectA16(context.Background(), clone, tab8, tab16, cfg, []map[string]*tensor.Tensor{{input: rows(calX, 0, 128)}},
				A16Options{N: int(name[len(name)-1] - '0'), Rounding: wr, Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: base SQNR %.2f dB, final %.2f dB, chosen %v", name, res.Base, res.Final, res.Chosen)
			cfg, autoTab = res.Config, res.Table
		}
		switch name {
		case "x86+a16 stem":
			cfg.Nodes = append(cfg.Nodes, Override{Name: firstConv(t, m.Graph).Name, Activation: ActivationSpec{DType: "quint16"}})
		case "a16w8":
			cfg.Activation.DType = "quint16"
		}
		tab := autoTab
		if tab == nil {
			tab = calibrateGraph(t, m.Graph, calib, cfg, nil, 0, 0)
		}
		var so StaticOptions
		if so.Rounding, err = OptimizeWeights(context.Background(), m.Graph, calBatches, cfg, RoundingOptions{Threads: 2}); err != nil {
			t.Fatal(err)
		}
		rep, err := Static(m.Graph, tab, cfg, so)
		if err != nil {
			t.Fatal(err)
		}
		qpath := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".onnx")
		if err := model.Save(m, qpath); err != nil {
			t.Fatal(err)
		}
		qm, err := model.Load(qpath)
		if err != nil {
			t.Fatal(err)
		}
		r := accRow{preset: name, floatAcc: floatAcc, quantized: rep.QuantizedTotal(), leftFloat: len(rep.Float)}
		r.acc, r.agree = score(classify(t, qm.Graph, input, evalX, batch), ref, evLabels)
		outName := qm.Graph.Outputs[0].Name
		if res, err := runORT(t, qpath, map[string]*tensor.Tensor{input: evalX}, []string{outName}); err != nil {
			r.ortErr = err
		} else {
			y := res[outName]
			k := y.Len() / evalX.Shape[0]
			op := make([]int, evalX.Shape[0])
			for i := range op {
				op[i] = argmax(y.F32()[i*k : (i+1)*k])
			}
			r.ortAcc, r.ortAgree = score(op, ref, evLabels)
		}
		rowsOut = append(rowsOut, r)
	}
	printRows(t, fmt.Sprintf("squeezenet-cifar10, 16-bit activations: calibrated on 100 JPEGs per class, evaluated on %d others", evalX.Shape[0]), rowsOut)
	// 16 bits where the x86 preset has 8 must not lose agreement; the
	// all-16-bit model is within a few flips of float.
	if rowsOut[1].agree < rowsOut[0].agree-0.001 || rowsOut[2].agree < rowsOut[0].agree {
		t.Errorf("16-bit activations agree less with float than 8-bit ones")
	}
	if rowsOut[2].agree < 0.995 {
		t.Errorf("a16w8 agrees with float on only %.4f", rowsOut[2].agree)
	}
}

// TestA16BiasOverflow: with 16-bit activations a large bias overflows
// int32 at scale sa·sw; it must stay float (not be clamped), so the
// quantized model still tracks float, and ONNX Runtime agrees.
func TestA16BiasOverflow(t *testing.T) {
	needORT(t)
	g := &graph.Graph{Name: "bias", Opsets: map[string]int64{"": 13}}
	nm := g.NewNamer()
	x := &graph.Value{Name: "x", DType: tensor.Float32, Shape: graph.KnownShape(1, 2, 4, 4)}
	g.Inputs = []*graph.Value{x}
	w := make([]float32, 3*2*3*3)
	for i := range w {
		w[i] = float32(i%7-3) * 0.1
	}
	wv := g.AddInitializer(nm, "w", tensor.FromFloat32([]int{3, 2, 3, 3}, w))
	bv := g.AddInitializer(nm, "b", tensor.FromFloat32([]int{3}, []float32{5000, -0.5, 0.25}))
	n := nm.NewNode("Conv", "conv", []*graph.Value{x, wv, bv}, 1, graph.IntsAttr("pads", []int64{1, 1, 1, 1}))
	g.Nodes = []*graph.Node{n}
	g.Outputs = n.Outputs
	m := &model.Model{IRVersion: 8, Graph: g}
	dir := t.TempDir()
	fpath := filepath.Join(dir, "float.onnx")
	if err := model.Save(m, fpath); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	data := make([]float32, 32*2*4*4)
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	calib := filepath.Join(dir, "calib.npy")
	writeNpy(t, calib, tensor.FromFloat32([]int{32, 2, 4, 4}, data))
	cfg := loadPreset(t, "ort-default")
	cfg.Activation.DType = "quint16"
	for _, format := range []string{FormatQDQ, FormatQOperator} {
		qm, err := model.Load(fpath)
		if err != nil {
			t.Fatal(err)
		}
		tab := calibrateGraph(t, qm.Graph, calib, cfg, nil, 0, 0)
		rep, err := Static(qm.Graph, tab, cfg, StaticOptions{Format: format})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range qm.Graph.Nodes {
			if n.OpType == "Conv" && (n.Input(2) == nil || n.Input(2).Const == nil || n.Input(2).Const.DType != tensor.Float32) {
				t.Fatalf("%s: the overflowing bias is not kept float", format)
			}
		}
		qpath := filepath.Join(dir, format+".onnx")
		if err := model.Save(qm, qpath); err != nil {
			t.Fatal(err)
		}
		in := map[string]*tensor.Tensor{"x": tensor.FromFloat32([]int{1, 2, 4, 4}, data[:32])}
		out := qm.Graph.Outputs[0].Name
		ours, err := tryOurs(qpath, in)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := tryOurs(fpath, in)
		if err != nil {
			t.Fatal(err)
		}
		ort, err := runORTLevel(t, qpath, in, []string{out}, "disabled")
		if err != nil {
			t.Fatal(err)
		}
		compareOutputs(t, ours, ort, rep.OutputScales)
		frac, worst := lsbAgreement(ours[out], ref[out], 4*rep.OutputScales[out])
		if frac < 1 {
			t.Errorf("%s: only %.3f of outputs within 4 steps of float (worst %.1f steps)", format, frac, worst)
		}
	}
}
