package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/calibrate"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/runtime/qdq"
	"github.com/qtool/qtool/internal/tensor"
)

func sharedPath(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join("..", "..", "..", "shared", rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no shared data: %v", err)
	}
	return p
}

// readIDXgz reads an MNIST idx file: its dims and its bytes.
func readIDXgz(t *testing.T, path string) ([]int, []byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	nd := int(b[3])
	dims := make([]int, nd)
	for i := range dims {
		dims[i] = int(binary.BigEndian.Uint32(b[4+4*i:]))
	}
	return dims, b[4+4*nd:]
}

func saveNpy(t *testing.T, path string, x *tensor.Tensor) {
	t.Helper()
	var buf bytes.Buffer
	if err := npy.Write(&buf, x); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// mnistSplit writes t10k digits [lo, hi) as x.npy (float pixels 0..255)
// and their labels as y.npy (int64), and returns the paths and labels.
func mnistSplit(t *testing.T, dir, name string, lo, hi int) (string, string, []int) {
	_, px := readIDXgz(t, sharedPath(t, "data/mnist/t10k-images-idx3-ubyte.gz"))
	_, lb := readIDXgz(t, sharedPath(t, "data/mnist/t10k-labels-idx1-ubyte.gz"))
	const n = 28 * 28
	x := make([]float32, 0, (hi-lo)*n)
	for _, p := range px[lo*n : hi*n] {
		x = append(x, float32(p))
	}
	y := make([]int64, 0, hi-lo)
	labels := make([]int, 0, hi-lo)
	for _, l := range lb[lo:hi] {
		y = append(y, int64(l))
		labels = append(labels, int(l))
	}
	xp, yp := filepath.Join(dir, name+"-x.npy"), filepath.Join(dir, name+"-y.npy")
	saveNpy(t, xp, tensor.FromFloat32([]int{hi - lo, 1, 28, 28}, x))
	saveNpy(t, yp, &tensor.Tensor{DType: tensor.Int64, Shape: []int{hi - lo}, Data: y})
	return xp, yp, labels
}

type evalJSON struct {
	Summary struct {
		Samples       int `json:"samples"`
		Labeled       int `json:"labeled"`
		FloatAccuracy struct {
			Top1, Top5 float64
		} `json:"float_accuracy"`
		QuantAccuracy struct {
			Top1, Top5 float64
		} `json:"quant_accuracy"`
		Agreement float64 `json:"top1_agreement"`
	} `json:"summary"`
	Outputs []struct {
		Name string `json:"name"`
		SQNR any    `json:"sqnr_db"`
	} `json:"outputs"`
	Layers []struct {
		Name   string `json:"name"`
		SQNR   any    `json:"sqnr_db"`
		Cosine any    `json:"cosine"`
	} `json:"layers"`
}

// predictions runs a model directly on each sample (batch of 1) and returns
// the argmax of its first output: the reference eval's figures must match.
// A QDQ model runs on the integer kernels, as 'qtool run' runs it.
func predictions(t *testing.T, path string, x *tensor.Tensor) []int {
	t.Helper()
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := qdq.Rewrite(m.Graph); err != nil {
		t.Fatal(err)
	}
	s, err := runtime.NewSession(m.Graph, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	per := x.Len() / x.Shape[0]
	shape := append([]int{1}, x.Shape[1:]...)
	var out []int
	for i := 0; i < x.Shape[0]; i++ {
		r, err := s.Run(map[string]*tensor.Tensor{s.InputNames()[0]: tensor.FromFloat32(shape, x.F32()[i*per:(i+1)*per])})
		if err != nil {
			t.Fatal(err)
		}
		y := r[s.OutputNames()[0]].F32()
		best := 0
		for j := range y {
			if y[j] > y[best] {
				best = j
			}
		}
		out = append(out, best)
	}
	return out
}

func TestEvalMNISTMatchesDirectRuntime(t *testing.T) {
	dir := t.TempDir()
	fp := sharedPath(t, "models/mnist-8/mnist-8.onnx")
	calib, _, _ := mnistSplit(t, dir, "calib", 0, 300)
	xp, yp, labels := mnistSplit(t, dir, "eval", 1000, 1400)
	qp := filepath.Join(dir, "mnist.int8.onnx")
	if code, _, errOut := runCLI(t, "quantize", fp, "--data", calib, "-o", qp, "--quiet"); code != 0 {
		t.Fatalf("quantize: exit %d: %s", code, errOut)
	}
	report := filepath.Join(dir, "report.html")
	code, out, errOut := runCLI(t, "eval", fp, qp, "--data", xp, "--labels", yp, "--json", "--report", report, "--threads", "1")
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, errOut)
	}
	var got evalJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	x, err := npy.ReadFile(xp)
	if err != nil {
		t.Fatal(err)
	}
	fpred, qpred := predictions(t, fp, x), predictions(t, qp, x)
	var fok, qok, agree int
	for i, l := range labels {
		if fpred[i] == l {
			fok++
		}
		if qpred[i] == l {
			qok++
		}
		if fpred[i] == qpred[i] {
			agree++
		}
	}
	n := float64(len(labels))
	s := got.Summary
	t.Logf("mnist-8 on t10k[1000:1400]: float top-1 %.4f, int8 top-1 %.4f, agreement %.4f (eval) / %.4f %.4f %.4f (direct)",
		s.FloatAccuracy.Top1, s.QuantAccuracy.Top1, s.Agreement, float64(fok)/n, float64(qok)/n, float64(agree)/n)
	if s.Samples != len(labels) || s.Labeled != len(labels) ||
		s.FloatAccuracy.Top1 != float64(fok)/n || s.QuantAccuracy.Top1 != float64(qok)/n || s.Agreement != float64(agree)/n {
		t.Errorf("eval says %+v; the runtime directly gives float %d, int8 %d, agree %d of %d", s, fok, qok, agree, len(labels))
	}
	if s.FloatAccuracy.Top1 < 0.9 {
		t.Errorf("float top-1 %.3f: labels or data are misread", s.FloatAccuracy.Top1)
	}
	// The text table names the same figure.
	_, text, _ := runCLI(t, "eval", fp, qp, "--data", xp, "--labels", yp, "--limit", "50")
	if !strings.Contains(text, "top-1:") || !strings.Contains(text, "agreement:") {
		t.Errorf("text output:\n%s", text)
	}
	page, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte("<svg")) || bytes.Contains(page, []byte("<script")) {
		t.Errorf("report.html: %d bytes, svg %v", len(page), bytes.Contains(page, []byte("<svg")))
	}
}

// quantizedActivations lists the activations the QDQ model quantizes: the
// float tensors fed to a QuantizeLinear that is not a constant.
func quantizedActivations(t *testing.T, path string) map[string]bool {
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ix := m.Graph.Index()
	out := map[string]bool{}
	for _, n := range m.Graph.Nodes {
		if n.OpType != "QuantizeLinear" || n.Inputs[0].Const != nil {
			continue
		}
		name := n.Inputs[0].Name
		// convert renames the producer's output to NAME_float and gives
		// the DequantizeLinear output the original name.
		for _, c := range ix.Consumers[n.Outputs[0]] {
			if c.OpType == "DequantizeLinear" && ix.Producer[n.Inputs[0]] != nil {
				name = c.Outputs[0].Name
			}
		}
		out[name] = true
	}
	return out
}

func TestEvalSqueezeNetPerLayer(t *testing.T) {
	dir := t.TempDir()
	fp := sharedPath(t, "models/squeezenet-cifar10/squeezenet_cifar10.onnx")
	data := sharedPath(t, "data/cifar10/cifar10-test-jpg.tar")
	cfg := filepath.Join(dir, "cifar.yaml")
	if err := os.WriteFile(cfg, []byte("calibration:\n  preprocess:\n    divisor: 256\n    layout: nhwc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	qp := filepath.Join(dir, "sq.int8.onnx")
	if code, _, errOut := runCLI(t, "quantize", fp, "--data", data, "--config", cfg, "--shuffle", "--seed", "1", "--limit", "100", "-o", qp, "--quiet"); code != 0 {
		t.Fatalf("quantize: exit %d: %s", code, errOut)
	}
	code, out, errOut := runCLI(t, "eval", fp, qp, "--data", data, "--config", cfg, "--shuffle", "--seed", "1", "--offset", "100", "--limit", "200", "--batch", "50", "--per-layer", "--json")
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, errOut)
	}
	var got evalJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	want := quantizedActivations(t, qp)
	listed := map[string]bool{}
	prev := math.Inf(-1)
	for _, l := range got.Layers {
		sq, ok := l.SQNR.(float64)
		if !ok || math.IsInf(sq, 0) || math.IsNaN(sq) {
			t.Errorf("%s: SQNR %v is not finite", l.Name, l.SQNR)
			continue
		}
		if sq < prev {
			t.Errorf("%s: SQNR %.2f after %.2f: not worst first", l.Name, sq, prev)
		}
		prev = sq
		listed[l.Name] = true
	}
	for name := range want {
		if !listed[name] {
			t.Errorf("quantized tensor %q is not in the per-layer table", name)
		}
	}
	if len(got.Layers) != len(want) || len(want) < 10 {
		t.Errorf("%d layers listed, %d quantized activations", len(got.Layers), len(want))
	}
	s := got.Summary
	t.Logf("squeezenet-cifar10, 200 shuffled test images: float top-1 %.3f, int8 %.3f, agreement %.3f, %d layers, worst %s %.2f dB",
		s.FloatAccuracy.Top1, s.QuantAccuracy.Top1, s.Agreement, len(got.Layers), got.Layers[0].Name, got.Layers[0].SQNR)
	if s.Labeled != 200 {
		t.Errorf("labels from the tar's class folders: %d labeled of %d", s.Labeled, s.Samples)
	}
	// The same 200 images through the runtime directly.
	fm, err := model.Load(fp)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := calibrate.Open([]calibrate.DataSpec{{Path: data}}, calibrate.InputSpecs(fm.Graph), calibrate.Options{
		Shuffle: true, Seed: 1, Offset: 100, Limit: 200, Preprocess: &calibrate.Preprocess{Divisor: 256, Layout: "nhwc"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	var px []float32
	var labels []int
	for it := ds.Iter(); ; {
		b, err := it.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range b.Inputs {
			px = append(px, x.F32()...)
		}
		labels = append(labels, b.Labels...)
	}
	x := tensor.FromFloat32([]int{len(labels), 32, 32, 3}, px)
	fpred, qpred := predictions(t, fp, x), predictions(t, qp, x)
	var fok, qok, agree int
	for i, l := range labels {
		fok += b2i(fpred[i] == l)
		qok += b2i(qpred[i] == l)
		agree += b2i(fpred[i] == qpred[i])
	}
	n := float64(len(labels))
	if s.FloatAccuracy.Top1 != float64(fok)/n || s.QuantAccuracy.Top1 != float64(qok)/n || s.Agreement != float64(agree)/n {
		t.Errorf("eval says float %.4f int8 %.4f agree %.4f; the runtime directly %d, %d, %d of %d",
			s.FloatAccuracy.Top1, s.QuantAccuracy.Top1, s.Agreement, fok, qok, agree, len(labels))
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestEvalBadInput(t *testing.T) {
	dir := t.TempDir()
	fp := filepath.Join(exampleMNIST, "mnist-8.onnx")
	x := filepath.Join(exampleDigits, "digit0_label7.npy")
	bad := filepath.Join(dir, "labels.npy")
	saveNpy(t, bad, tensor.FromFloat32([]int{1}, []float32{7}))
	short := filepath.Join(dir, "short.npy")
	saveNpy(t, short, &tensor.Tensor{DType: tensor.Int64, Shape: []int{0}, Data: []int64{}})
	big := filepath.Join(dir, "big.npy")
	saveNpy(t, big, &tensor.Tensor{DType: tensor.Int64, Shape: []int{1}, Data: []int64{12}})
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"eval", fp}, "accepts 2 arg"},
		{[]string{"eval", fp, fp}, "no data"},
		{[]string{"eval", fp, filepath.Join(dir, "nosuch.onnx"), "--data", x}, "nosuch.onnx"},
		{[]string{"eval", fp, fp, "--data", x, "--labels", bad}, "integers"},
		{[]string{"eval", fp, fp, "--data", x, "--labels", short}, "0 labels for 1 samples"},
		{[]string{"eval", fp, fp, "--data", x, "--labels", big}, "label 12"},
		{[]string{"eval", fp, fp, "--data", x, "--report", fp}, "input"},
		{[]string{"eval", fp, fp, "--data", x, "--report", filepath.Join(dir, "r.html"), "--histogram", "nosuch"}, "nosuch"},
	} {
		code, _, errOut := runCLI(t, c.args...)
		if code != exitInput || !strings.Contains(errOut, c.msg) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q (want 2 and %q)", c.args, code, errOut, c.msg)
		}
	}
	// A float model against itself: exact, agreement 100%, no layers.
	code, out, errOut := runCLI(t, "eval", fp, fp, "--data", x, "--per-layer")
	if code != 0 || !strings.Contains(out, "agreement: 100.00%") || !strings.Contains(out, "SQNR inf dB") || !strings.Contains(out, "no quantized activation") {
		t.Errorf("float vs itself: exit %d\n%s%s", code, out, errOut)
	}
}

// TestEvalMaxDropConfigMeetsBudget: --max-drop on squeezenet-cifar10 with
// the ort-default preset writes a config; converting with that config and
// evaluating on the same split gives the drop the search reported, within
// the budget, and every smaller set it tried was over budget.
func TestEvalMaxDropConfigMeetsBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("about 20 s: a dozen squeezenet variants on 200 images")
	}
	dir := t.TempDir()
	fp := sharedPath(t, "models/squeezenet-cifar10/squeezenet_cifar10.onnx")
	data := sharedPath(t, "data/cifar10/cifar10-test-jpg.tar")
	preset, err := os.ReadFile(filepath.Join("..", "..", "configs", "ort-default.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "ort.yaml")
	if err := os.WriteFile(cfg, append(preset, []byte("  preprocess:\n    divisor: 256\n    layout: nhwc\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	table := filepath.Join(dir, "table.json")
	if code, _, errOut := runCLI(t, "calibrate", fp, "--data", data, "--config", cfg, "--shuffle", "--seed", "1", "--limit", "200", "-o", table, "--quiet"); code != 0 {
		t.Fatalf("calibrate: %s", errOut)
	}
	qp := filepath.Join(dir, "q.onnx")
	if code, _, errOut := runCLI(t, "convert", fp, "--table", table, "--config", cfg, "-o", qp, "--quiet"); code != 0 {
		t.Fatalf("convert: %s", errOut)
	}
	split := []string{"--data", data, "--config", cfg, "--shuffle", "--seed", "1", "--offset", "1000", "--limit", "200", "--batch", "50"}
	keep := filepath.Join(dir, "keep.yaml")
	code, out, errOut := runCLI(t, append([]string{"eval", fp, qp, "--table", table, "--sensitivity", "--max-drop", "0.5", "-o", keep, "--json"}, split...)...)
	var got struct {
		Sensitivity []struct {
			Node string `json:"node"`
		} `json:"sensitivity"`
		MaxDrop struct {
			Met   bool `json:"met"`
			Steps []struct {
				KeepFloat []string `json:"keep_float"`
				Cost      struct {
					Drop float64 `json:"drop"`
				} `json:"cost"`
			} `json:"steps"`
		} `json:"max_drop"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("exit %d: %v\n%s%s", code, err, out, errOut)
	}
	if n := len(got.Sensitivity); n < 11 {
		t.Errorf("sensitivity ranks %d layers; squeezenet has 11 convolutions", n)
	}
	steps := got.MaxDrop.Steps
	// On this split the fully quantized model drops 1.5 pt: the search
	// must keep some layers float.
	if len(steps) < 2 {
		t.Errorf("%d steps: the split no longer exercises the search", len(steps))
	}
	if !got.MaxDrop.Met || code != 0 || len(steps) == 0 {
		t.Fatalf("max-drop 0.5 not met (exit %d): %s", code, errOut)
	}
	for _, st := range steps[:len(steps)-1] {
		if st.Cost.Drop <= 0.005+1e-9 {
			t.Errorf("the search went past a set that met the budget: %d float, drop %v", len(st.KeepFloat), st.Cost.Drop)
		}
	}
	last := steps[len(steps)-1]
	t.Logf("max-drop 0.5 on 200 images: %d steps, %d layers float, drop %.2f pt", len(steps), len(last.KeepFloat), 100*last.Cost.Drop)
	qk := filepath.Join(dir, "keep.onnx")
	if code, _, errOut := runCLI(t, "convert", fp, "--table", table, "--config", keep, "-o", qk, "--quiet"); code != 0 {
		t.Fatalf("convert with the written config: %s", errOut)
	}
	code, out, errOut = runCLI(t, append([]string{"eval", fp, qk, "--json"}, split...)...)
	if code != 0 {
		t.Fatal(errOut)
	}
	var re evalJSON
	if err := json.Unmarshal([]byte(out), &re); err != nil {
		t.Fatal(err)
	}
	drop := re.Summary.FloatAccuracy.Top1 - re.Summary.QuantAccuracy.Top1
	if drop > 0.005+1e-9 || math.Abs(drop-last.Cost.Drop) > 1e-12 {
		t.Errorf("the written config's model drops %.4f, the search said %.4f (budget 0.005)", drop, last.Cost.Drop)
	}
}
