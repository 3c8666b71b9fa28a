package convert

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/calibrate"
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/observe"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// sileroChunks cuts test.wav as the model README says: 512-sample chunks
// with 64 samples of left context (zeros before the start).
func sileroChunks(t testing.TB) []*tensor.Tensor {
	wav := silero(t)
	var out []*tensor.Tensor
	for i := 0; (i+1)*512 <= len(wav); i++ {
		x := make([]float32, 576)
		for k := range x {
			if j := i*512 - 64 + k; j >= 0 {
				x[k] = wav[j]
			}
		}
		out = append(out, tensor.FromFloat32([]int{1, 576}, x))
	}
	return out
}

// runVAD runs the detector over the chunks with the state carried from
// zeros and returns the speech probabilities; with record, it also returns
// every float activation of the first n chunks' runs (for calibration).
func runVAD(t testing.TB, g *graph.Graph, chunks []*tensor.Tensor) []float32 {
	s, err := runtime.NewSession(g, runtime.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	state := tensor.FromFloat32([]int{2, 1, 128}, make([]float32, 256))
	var probs []float32
	for _, c := range chunks {
		out, err := s.Run(map[string]*tensor.Tensor{"input": c, "state": state})
		if err != nil {
			t.Fatal(err)
		}
		probs = append(probs, out["output"].F32()[0])
		state = out["stateN"]
	}
	return probs
}

// minMaxTable observes every float activation of g over the first chunks
// with MinMax (what the calibrate package cannot feed here: the state input
// has no batch axis first) and writes the qparams the table would hold.
func minMaxTable(t testing.TB, g *graph.Graph, chunks []*tensor.Tensor) *calibrate.Table {
	var vals []*graph.Value
	seen := map[string]bool{}
	for _, v := range g.Inputs {
		if v.DType == tensor.Float32 {
			vals, seen[v.Name] = append(vals, v), true
		}
	}
	for _, n := range g.Nodes {
		for _, v := range n.Outputs {
			if v != nil && !seen[v.Name] && (v.DType == tensor.Float32 || v.DType == tensor.Undefined) {
				vals, seen[v.Name] = append(vals, v), true
			}
		}
	}
	saved := g.Outputs
	var extra []*graph.Value
	for _, v := range vals {
		if !isInputOrOutput(g, v) {
			extra = append(extra, v)
		}
	}
	g.Outputs = append(append([]*graph.Value(nil), saved...), extra...)
	// The session reads g.Outputs while it runs: restore them after.
	defer func() { g.Outputs = saved }()
	s, err := runtime.NewSession(g, runtime.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	mins, maxs := map[string]float32{}, map[string]float32{}
	state := tensor.FromFloat32([]int{2, 1, 128}, make([]float32, 256))
	for _, c := range chunks {
		in := map[string]*tensor.Tensor{"input": c, "state": state}
		out, err := s.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range in {
			out[k] = v
		}
		for name, x := range out {
			if x.DType != tensor.Float32 {
				continue
			}
			for _, f := range x.F32() {
				if _, ok := mins[name]; !ok {
					mins[name], maxs[name] = f, f
				}
				mins[name], maxs[name] = min(mins[name], f), max(maxs[name], f)
			}
		}
		state = out["stateN"]
	}
	tab := &calibrate.Table{Version: calibrate.TableVersion}
	for name := range mins {
		sc, zp, err := tensor.ChooseQParams(mins[name], maxs[name], tensor.QParamsOpts{DType: tensor.Uint8, Scheme: tensor.PerTensorAffine})
		if err != nil || math.IsInf(float64(sc), 0) {
			continue
		}
		tab.Tensors = append(tab.Tensors, &calibrate.Entry{Name: name, Role: calibrate.RoleActivation, DType: "uint8", QScheme: "per_tensor_affine",
			Scales: []observe.F32{observe.F32(sc)}, ZeroPoints: []int32{zp}})
	}
	return tab
}

func isInputOrOutput(g *graph.Graph, v *graph.Value) bool {
	for _, x := range append(append([]*graph.Value(nil), g.Inputs...), g.Outputs...) {
		if x == v {
			return true
		}
	}
	return false
}

// TestSileroDecisions: silero VAD (openvino export, opset 16) static QDQ
// and QOperator and dynamic; ONNX Runtime runs each and agrees with ours;
// the speech decision at 0.5 is compared with float's over the 1,875
// chunks (QTOOL_ACCURACY=full; else the first 400), state carried from
// zeros through the quantized model itself. The goal is 99.5%.
func TestSileroDecisions(t *testing.T) {
	path := shared(t, "models/silero-vad/silero_vad_openvino_16k.onnx")
	chunks := sileroChunks(t)
	if !fullAccuracy {
		chunks = chunks[:400]
	}
	fm := loadFused(t, path)
	ref := runVAD(t, fm.Graph, chunks)
	tab := minMaxTable(t, fm.Graph, chunks[:min(200, len(chunks))])
	dir := t.TempDir()
	state := tensor.FromFloat32([]int{2, 1, 128}, make([]float32, 256))
	for _, variant := range []string{"qdq", "qoperator", "dynamic", "dynamic-contrib"} {
		t.Run(variant, func(t *testing.T) {
			m := loadFused(t, path)
			var rep *Report
			var err error
			if strings.HasPrefix(variant, "dynamic") {
				cfg := loadPreset(t, "dynamic")
				if variant == "dynamic-contrib" {
					cfg.LSTM = "contrib" // com.microsoft DynamicQuantizeLSTM
				}
				rep, err = Dynamic(m.Graph, cfg)
			} else {
				cfg := loadPreset(t, "x86")
				// The STFT (a convolution over raw audio, followed by a
				// magnitude) needs more than 8 bits: it stays float, and so
				// does the first encoder conv, which reads that magnitude:
				// a spectrum spans decades, and uint8 steps sized for its
				// loud bins erase the quiet ones. Excluding it alone takes
				// the full run from 1851 to 1873 of 1875 same decisions;
				// excluding any other conv (or the Sigmoid) changes at most
				// two decisions.
				cfg.Exclude.Nodes = append(cfg.Exclude.Nodes, "*/stft/Conv", "*/encoder/0/*")
				rep, err = Static(m.Graph, tab, cfg, StaticOptions{Format: variant})
			}
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, variant+".onnx")
			if err := model.Save(m, out); err != nil {
				t.Fatal(err)
			}
			qm, err := model.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			probs := runVAD(t, qm.Graph, chunks)
			same := 0
			for i := range probs {
				if (probs[i] > 0.5) == (ref[i] > 0.5) {
					same++
				}
			}
			frac := float64(same) / float64(len(probs))
			ops := rep.OpTypes()
			t.Logf("%s: quantized %s; %d left float; same decision on %d/%d chunks (%.2f%%)", variant, strings.Join(ops, ","), len(rep.Float), same, len(probs), 100*frac)
			goal := "met"
			if frac < 0.995 {
				goal = "NOT met"
			}
			t.Logf("%s: goal of 99.5%% same decisions: %s", variant, goal)
			// Fail on a regression below what this test measured when
			// written (99.0% static before the first encoder conv stayed
			// float, 100% dynamic on the first 400 chunks).
			if floor := map[bool]float64{true: 0.995, false: 0.995}[strings.HasPrefix(variant, "dynamic")]; frac < floor {
				t.Errorf("%s: decisions agree on %.2f%% < %.1f%%", variant, 100*frac, 100*floor)
			}
			in := map[string]*tensor.Tensor{"input": chunks[len(chunks)/2], "state": state}
			level := "all"
			if variant == "qdq" {
				level = qdqLevel(FormatQDQ)
			}
			agreeWithORT(t, out, in, []string{"output", "stateN"}, level, rep.OutputScales)
		})
	}
}
