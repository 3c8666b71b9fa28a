package convert

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/runtime/nodetest"
	"github.com/qtool/qtool/internal/tensor"
)

// fp16Case is a model with one input set to run.
type fp16Case struct {
	name, path string
	in         map[string]*tensor.Tensor
	heavy      bool
}

func fp16Cases(t *testing.T) []fp16Case {
	x, _ := mnist(t)
	sq := shared(t, "models/squeezenet-cifar10/squeezenet_cifar10.onnx")
	fm, err := model.Load(sq)
	if err != nil {
		t.Fatal(err)
	}
	cx, _ := cifar(t, fm.Graph)
	tv, err := npy.ReadFile(shared(t, "models/torchvision-random/input_1x3x224x224.npy"))
	if err != nil {
		t.Fatal(err)
	}
	chunks := sileroChunks(t)
	state := tensor.FromFloat32([]int{2, 1, 128}, make([]float32, 256))
	sil := map[string]*tensor.Tensor{"input": chunks[40], "state": state}
	sr := map[string]*tensor.Tensor{"input": chunks[40], "state": state, "sr": tensor.FromInt64([]int{}, []int64{16000})}
	return []fp16Case{
		{name: "mnist-8", path: shared(t, "models/mnist-8/mnist-8.onnx"), in: map[string]*tensor.Tensor{"Input3": rows(x, 100, 101)}},
		{name: "squeezenet-cifar10", path: sq, in: map[string]*tensor.Tensor{fm.Graph.Inputs[0].Name: rows(cx, 5000, 5016)}},
		{name: "silero_vad_16k_op15", path: shared(t, "models/silero-vad/silero_vad_16k_op15.onnx"), in: sr},
		{name: "silero_vad_openvino_16k", path: shared(t, "models/silero-vad/silero_vad_openvino_16k.onnx"), in: sil},
		{name: "resnet18", path: shared(t, "models/torchvision-random/resnet18_fp32_opset13.onnx"), in: map[string]*tensor.Tensor{"input": tv}, heavy: true},
		{name: "mobilenet_v2", path: shared(t, "models/torchvision-random/mobilenet_v2_fp32_bnrecal_opset13.onnx"), in: map[string]*tensor.Tensor{"input": tv}, heavy: true},
	}
}

// convertFile loads a model, converts it to float16 and returns the bytes.
func convertFile(t testing.TB, path string, opts Float16Options) ([]byte, *Float16Report) {
	t.Helper()
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Float16Full(m.Graph, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := model.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b, rep
}

// checkFP16Structure asserts that a converted graph (as reloaded from its
// bytes) computes in float16: the only float32 values are the graph's I/O
// (when kept), the outputs of the nodes the report lists as float32 and of
// Casts to float32, the float32 constants such nodes read, and Resize's
// scales.
func checkFP16Structure(t *testing.T, g *graph.Graph, rep *Float16Report, io32 bool) {
	t.Helper()
	if err := graph.InferShapes(g); err != nil {
		t.Fatalf("reloaded model does not type-check: %v", err)
	}
	kept := map[string]bool{}
	for _, f := range rep.Float {
		kept[f.Node] = true
	}
	ok32 := map[*graph.Value]bool{}
	var walk func(g *graph.Graph, main bool)
	walk = func(g *graph.Graph, main bool) {
		if main && io32 {
			for _, v := range g.Inputs {
				ok32[v] = true
			}
			for _, v := range g.Outputs {
				ok32[v] = true
			}
		}
		for _, n := range g.Nodes {
			if kept[n.Name] {
				for _, v := range n.Outputs {
					ok32[v] = true
				}
				for _, v := range n.Inputs {
					if v != nil && v.Const != nil {
						ok32[v] = true
					}
				}
			}
			if n.OpType == "Constant" {
				for _, m := range g.Nodes {
					if kept[m.Name] {
						for _, v := range m.Inputs {
							if v == n.Output(0) {
								ok32[v] = true
							}
						}
					}
				}
			}
			if n.OpType == "Resize" {
				ok32[n.Input(resizeScalesInput(g.Opset("")))] = true
			}
			if to, _ := n.AttrInt("to", 0); n.OpType == "Cast" && to == int64(tensor.Float32) {
				ok32[n.Output(0)] = true
			}
			for _, sg := range n.Subgraphs() {
				walk(sg, false)
			}
		}
		check := func(v *graph.Value, what string) {
			if v != nil && v.DType == tensor.Float32 && !ok32[v] {
				t.Errorf("%s %q is still float32", what, v.Name)
			}
		}
		read := map[*graph.Value]bool{}
		for _, n := range g.Nodes {
			for _, v := range n.Inputs {
				read[v] = true
			}
		}
		for _, v := range g.Initializers {
			if read[v] { // IR 3 models keep unread initializers (graph inputs too)
				check(v, "initializer")
			}
		}
		for _, n := range g.Nodes {
			for _, v := range n.Outputs {
				check(v, "output of "+n.String()+":")
			}
		}
	}
	walk(g, true)
}

// relDiff is max |a-b| over max |a| (the reference's range).
func relDiff(a, b *tensor.Tensor) float64 {
	x, y := a.F32(), b.F32()
	d, m := 0.0, 1e-12
	for i := range x {
		d = math.Max(d, math.Abs(float64(x[i]-y[i])))
		m = math.Max(m, math.Abs(float64(x[i])))
	}
	return d / m
}

// ortMissing extracts the op ONNX Runtime has no kernel for from its error.
var ortMissing = regexp.MustCompile(`implementation for (\w+)\(`)

// TestFloat16FullModels converts every shared model to float16 with float32
// I/O and checks: the conversion is deterministic, and so are the results
// (1 and 2 threads give the same bits); the file reloads and
// type-checks with no float32 value left beyond the report's; our runtime
// runs it within float16's precision of the float model; ONNX Runtime loads
// and runs it (where its CPU provider lacks a float16 kernel, that op is
// kept float32 and the refusal is logged) and agrees with our runtime.
//
// ONNX Runtime 1.30's CPU provider runs all of these models, but not in
// float16 throughout: where it has no float16 kernel it inserts Casts to
// float32 and then drops the Cast pairs between consecutive float32 nodes,
// so runs of such nodes never round to float16 (a float16 Conv→Mul graph
// there returns values that are not float16 numbers before the last Cast).
// Our runtime rounds every node's output, as the model says, so ORT lands
// closer to the float32 model (1e-4..1e-2 of the output range here) and
// the two float16 results are compared at float16's accumulated precision.
func TestFloat16FullModels(t *testing.T) {
	dir := t.TempDir()
	for _, fc := range fp16Cases(t) {
		fc := fc
		t.Run(fc.name, func(t *testing.T) {
			if fc.heavy && testing.Short() {
				t.Skip("224x224 models skipped under -short")
			}
			b1, rep := convertFile(t, fc.path, Float16Options{})
			b2, _ := convertFile(t, fc.path, Float16Options{})
			if !bytes.Equal(b1, b2) {
				t.Fatal("two conversions of the same model differ")
			}
			fi, _ := os.Stat(fc.path)
			t.Logf("%d nodes float16, %d kept float32, %d casts, %d constants clamped; %d -> %d bytes", rep.QuantizedTotal(), len(rep.Float), rep.Casts, len(rep.Clamped), fi.Size(), len(b1))
			for _, f := range rep.Float {
				t.Logf("  float32: %s %q: %s", f.OpType, f.Node, f.Reason)
			}
			m16, err := model.LoadBytes(b1, "")
			if err != nil {
				t.Fatal(err)
			}
			checkFP16Structure(t, m16.Graph, rep, true)
			want, err := tryOurs(fc.path, fc.in)
			if err != nil {
				t.Fatal(err)
			}
			got := runGraph(t, m16.Graph, fc.in)
			s1, err := runtime.NewSession(m16.Graph, runtime.Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			one, err := s1.Run(fc.in)
			if err != nil {
				t.Fatal(err)
			}
			for name, a := range one {
				if !graph.TensorsIdentical(a, got[name]) {
					t.Errorf("output %q: 1 and 2 threads differ", name)
				}
			}
			for name, w := range want {
				g := got[name]
				if g.DType != tensor.Float32 {
					t.Fatalf("output %q is %v with float32 I/O kept", name, g.DType)
				}
				d := relDiff(w, g)
				t.Logf("output %q: float16 vs float32 model, max |diff| / max |float32| = %.2e", name, d)
				if d > 3e-2 {
					t.Errorf("output %q: float16 differs from float32 by %.2e of its range", name, d)
				}
			}
			// ONNX Runtime, blocking what its CPU provider cannot run.
			var blocked []string
			path := filepath.Join(dir, fc.name+".fp16.onnx")
			b := b1
			for {
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				ort, err := runORT(t, path, fc.in, sortedKeys(want))
				if err != nil {
					mm := ortMissing.FindStringSubmatch(err.Error())
					if mm == nil || len(blocked) > 10 {
						t.Fatalf("ONNX Runtime: %v", err)
					}
					t.Logf("ONNX Runtime has no float16 kernel for %s: kept float32 for it (%s)", mm[1], err)
					blocked = append(blocked, mm[1])
					b, _ = convertFile(t, fc.path, Float16Options{OpBlockList: append(append([]string(nil), DefaultFP16BlockList...), blocked...)})
					continue
				}
				ours := got
				if len(blocked) > 0 {
					mb, err := model.LoadBytes(b, "")
					if err != nil {
						t.Fatal(err)
					}
					ours = runGraph(t, mb.Graph, fc.in)
				}
				ort32, err := runORT(t, fc.path, fc.in, sortedKeys(want))
				if err != nil {
					t.Fatal(err)
				}
				for name, o := range ours {
					d := relDiff(o, ort[name])
					t.Logf("output %q: ONNX Runtime vs ours (float16, blocked %v): max |diff| / max |ours| = %.2e; vs ORT float32: ORT float16 %.2e, ours %.2e", name, blocked, d, relDiff(ort32[name], ort[name]), relDiff(ort32[name], o))
					if d > 3e-2 {
						t.Errorf("output %q: ONNX Runtime differs from our runtime by %.2e of the range", name, d)
					}
				}
				break
			}
			// As qtool convert does it: fused first.
			fm := loadFused(t, fc.path)
			frep, err := Float16Full(fm.Graph, Float16Options{})
			if err != nil {
				t.Fatalf("fused: %v", err)
			}
			fb, err := model.Marshal(fm)
			if err != nil {
				t.Fatal(err)
			}
			ff, err := model.LoadBytes(fb, "")
			if err != nil {
				t.Fatal(err)
			}
			checkFP16Structure(t, ff.Graph, frep, true)
			fpath := filepath.Join(dir, fc.name+".fused.fp16.onnx")
			if err := os.WriteFile(fpath, fb, 0o644); err != nil {
				t.Fatal(err)
			}
			fgot := runGraph(t, ff.Graph, fc.in)
			fort, err := runORT(t, fpath, fc.in, sortedKeys(want))
			if err != nil {
				t.Fatalf("fused: ONNX Runtime: %v", err)
			}
			for name, w := range want {
				d, o := relDiff(w, fgot[name]), relDiff(fgot[name], fort[name])
				t.Logf("fused, output %q: vs float32 %.2e, vs ONNX Runtime %.2e", name, d, o)
				if d > 3e-2 || o > 3e-2 {
					t.Errorf("fused, output %q: %.2e from float32, %.2e from ONNX Runtime", name, d, o)
				}
			}
		})
	}
}

func sortedKeys(m map[string]*tensor.Tensor) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func runGraph(t testing.TB, g *graph.Graph, in map[string]*tensor.Tensor) map[string]*tensor.Tensor {
	t.Helper()
	s, err := runtime.NewSession(g, runtime.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFloat16FullAgreement: the float16 model gives the float model's top-1
// answer on at least 99.5% of mnist-8's and squeezenet-cifar10's samples,
// and silero's speech decision (at 0.5, state carried over the chunks) on
// at least 99.5% of the chunks (QTOOL_ACCURACY=full: all 10,000 / 10,000 /
// 1,875; else 2,000 / 1,000 / 400).
func TestFloat16FullAgreement(t *testing.T) {
	n := 2000
	if fullAccuracy {
		n = 10000
	}
	x, labels := mnist(t)
	sq := shared(t, "models/squeezenet-cifar10/squeezenet_cifar10.onnx")
	fm, err := model.Load(sq)
	if err != nil {
		t.Fatal(err)
	}
	cx, clabels := cifar(t, fm.Graph)
	cases := []struct {
		name, path string
		x          *tensor.Tensor
		labels     []int
	}{
		{"mnist-8", shared(t, "models/mnist-8/mnist-8.onnx"), rows(x, 0, n), labels[:n]},
		{"squeezenet-cifar10", sq, rows(cx, 0, n/2), clabels[:n/2]},
	}
	if fullAccuracy {
		cases[1].x, cases[1].labels = cx, clabels
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fm, err := model.Load(c.path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := convertFile(t, c.path, Float16Options{})
			hm, err := model.LoadBytes(b, "")
			if err != nil {
				t.Fatal(err)
			}
			batch := 100
			if fixedBatch(fm.Graph) {
				batch = 1
			}
			in := fm.Graph.Inputs[0].Name
			ref := classify(t, fm.Graph, in, c.x, batch)
			got := classify(t, hm.Graph, in, c.x, batch)
			acc, agree := score(got, ref, c.labels)
			facc, _ := score(ref, ref, c.labels)
			t.Logf("%d samples: top-1 float32 %.2f%%, float16 %.2f%%, same answer %.2f%%", len(ref), 100*facc, 100*acc, 100*agree)
			if agree < 0.995 {
				t.Errorf("top-1 agreement %.2f%% < 99.5%%", 100*agree)
			}
		})
	}
	chunks := sileroChunks(t)
	if !fullAccuracy {
		chunks = chunks[:400]
	}
	for _, name := range []string{"silero_vad_openvino_16k", "silero_vad_16k_op15"} {
		t.Run(name, func(t *testing.T) {
			path := shared(t, "models/silero-vad/"+name+".onnx")
			fm, err := model.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := convertFile(t, path, Float16Options{})
			hm, err := model.LoadBytes(b, "")
			if err != nil {
				t.Fatal(err)
			}
			ref, got := vadProbs(t, fm.Graph, chunks), vadProbs(t, hm.Graph, chunks)
			same, worst := 0, 0.0
			for i := range ref {
				if (ref[i] > 0.5) == (got[i] > 0.5) {
					same++
				}
				worst = math.Max(worst, math.Abs(float64(ref[i]-got[i])))
			}
			frac := float64(same) / float64(len(ref))
			t.Logf("%d chunks: same decision on %d (%.2f%%), largest probability change %.4f", len(ref), same, 100*frac, worst)
			if frac < 0.995 {
				t.Errorf("same decision on %.2f%% < 99.5%% of chunks", 100*frac)
			}
		})
	}
}

// vadProbs is runVAD for both silero files (op15 also reads the rate).
func vadProbs(t testing.TB, g *graph.Graph, chunks []*tensor.Tensor) []float32 {
	s, err := runtime.NewSession(g, runtime.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	state := tensor.FromFloat32([]int{2, 1, 128}, make([]float32, 256))
	var probs []float32
	for _, c := range chunks {
		in := map[string]*tensor.Tensor{"input": c, "state": state}
		if len(s.InputNames()) == 3 {
			in["sr"] = tensor.FromInt64([]int{}, []int64{16000})
		}
		out, err := s.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		probs = append(probs, out["output"].F32()[0])
		state = out["stateN"]
	}
	return probs
}

// fp16Limits are node tests whose expected outputs float16 cannot give,
// whatever the runtime: the limits of an 11-bit significand and a 65504
// range, not conversion or kernel errors.
var fp16Limits = map[string]string{
	"test_softmax_large_number":                      "inputs 10000..10003 are one float16 value",
	"test_softmax_large_number_expanded":             "inputs 10000..10003 are one float16 value",
	"test_logsoftmax_large_number":                   "inputs 10000..10003 are one float16 value",
	"test_logsoftmax_large_number_expanded":          "inputs 10000..10003 are one float16 value",
	"test_reduce_prod_default_axes_keepdims_example": "the product 4.8e8 overflows float16",
	"test_tan":                                      "tan near pi/2 magnifies the input's rounding",
	"test_dynamicquantizelinear_expanded":           "a scale rounded to float16 moves a value across a rounding boundary",
	"test_range_float_type_positive_delta_expanded": "Loop scan outputs are not typed by shape inference (conversion refuses)",
	"test_range_int32_type_negative_delta_expanded": "Loop scan outputs are not typed by shape inference (conversion refuses)",
}

// TestFloat16FullNodeTests converts every ONNX backend node test (shared
// onnx-node and libonnx-testdata) that our runtime passes in float32 to
// float16 (float32
// I/O) and compares our runtime's outputs with the tests' expected float32
// outputs, within what float16 storage costs: inputs, weights and every
// intermediate result rounded to 11 significant bits. Most ops run through
// the runtime's float32 fallback; Cast, Constant, the shape and index ops,
// If/Loop/Scan and the elementwise ops with float16 kernels run natively.
func TestFloat16FullNodeTests(t *testing.T) {
	dirs := nodetest.Dirs("test_*")
	if len(dirs) == 0 {
		t.Skip("no ONNX node tests (shared/onnx-node, libonnx-testdata)")
	}
	ran, limits := 0, 0
	for _, d := range dirs {
		name := filepath.Base(d)
		if nodetest.Check(d, 1) != nil {
			continue // not supported (or not passing) in float32: not ours to judge here
		}
		m, err := model.Load(filepath.Join(d, "model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Float16Full(m.Graph, Float16Options{})
		if err == nil {
			err = fp16NodeCheck(m.Graph, d)
		}
		_, limit := fp16Limits[name]
		switch {
		case err != nil && limit:
			limits++
		case err != nil:
			t.Errorf("%s: %v", name, err)
		case limit:
			t.Errorf("%s passes: remove it from fp16Limits", name)
		default:
			ran++
		}
	}
	t.Logf("%d node tests within float16 tolerance, %d beyond float16's limits", ran, limits)
	if ran == 0 {
		t.Error("no node test ran")
	}
}

func fp16NodeCheck(g *graph.Graph, dir string) error {
	s, err := runtime.NewSession(g, runtime.Options{Threads: 2})
	if err != nil {
		return err
	}
	set := filepath.Join(dir, "test_data_set_0")
	in, err := nodetest.ReadInputs(set, s.InputNames())
	if err != nil {
		return err
	}
	out, err := s.Run(in)
	if err != nil {
		return err
	}
	for i, name := range s.OutputNames() {
		want, err := nodetest.ReadOutput(set, i)
		if err != nil {
			return err
		}
		got := out[name]
		if want.DType != tensor.Float32 {
			if err := nodetest.Compare(got, want); err != nil {
				return fmt.Errorf("output %q: %v", name, err)
			}
			continue
		}
		if got.DType != tensor.Float32 || got.Len() != want.Len() {
			return fmt.Errorf("output %q: %v%v, want float32%v", name, got.DType, got.Shape, want.Shape)
		}
		w, gv := want.F32(), got.F32()
		m := 0.0
		for _, v := range w {
			m = math.Max(m, math.Abs(float64(v)))
		}
		for j := range w {
			d := math.Abs(float64(gv[j] - w[j]))
			if d > 2e-3*m+4e-3*math.Abs(float64(w[j])) {
				return fmt.Errorf("output %q[%d] = %g, want %g (max |want| %g)", name, j, gv[j], w[j], m)
			}
		}
	}
	return nil
}
