package convert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/qtool/qtool/internal/calibrate"
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
	"github.com/spf13/viper"
)

// fullAccuracy selects the full evaluation (all held-out samples); the
// default is a subset that keeps `go test` short. `make accuracy` sets it.
var fullAccuracy = os.Getenv("QTOOL_ACCURACY") == "full"

// loadPreset reads configs/NAME.yaml the way the command does (viper).
func loadPreset(t testing.TB, name string) Config {
	t.Helper()
	v := viper.New()
	v.SetConfigFile(filepath.Join(repoRoot(t), "configs", name+".yaml"))
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		t.Fatal(err)
	}
	c, err := DecodeConfig(v.Get("quantization"))
	if err != nil {
		t.Fatalf("configs/%s.yaml: %v", name, err)
	}
	return c
}

// classify runs a graph over x in batches and returns the argmax of its
// first output per sample.
func classify(t testing.TB, g *graph.Graph, input string, x *tensor.Tensor, batch int) []int {
	t.Helper()
	s, err := runtime.NewSession(g, runtime.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	out := s.OutputNames()[0]
	var pred []int
	for lo := 0; lo < x.Shape[0]; lo += batch {
		hi := min(lo+batch, x.Shape[0])
		res, err := s.Run(map[string]*tensor.Tensor{input: rows(x, lo, hi)})
		if err != nil {
			t.Fatal(err)
		}
		y := res[out]
		per := y.Len() / (hi - lo)
		for i := 0; i < hi-lo; i++ {
			pred = append(pred, argmax(y.F32()[i*per:(i+1)*per]))
		}
	}
	return pred
}

func fixedBatch(g *graph.Graph) bool {
	s := g.Inputs[0].Shape
	return len(s) > 0 && s[0].Known()
}

type accRow struct {
	preset               string
	acc, floatAcc, agree float64
	ortAcc, ortAgree     float64
	ortErr               error
	quantized, leftFloat int
}

func score(pred, ref, labels []int) (acc, agree float64) {
	a, g := 0, 0
	for i := range pred {
		if pred[i] == labels[i] {
			a++
		}
		if pred[i] == ref[i] {
			g++
		}
	}
	return float64(a) / float64(len(pred)), float64(g) / float64(len(pred))
}

// accuracyCase quantizes modelPath with each preset (calibrating on calib),
// evaluates float and int8 on evalX, and also runs the int8 model in ONNX
// Runtime on the same samples.
func accuracyCase(t *testing.T, modelPath string, calib string, evalX *tensor.Tensor, labels []int, batch int) []accRow {
	fm, err := model.Load(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	input := fm.Graph.Inputs[0].Name
	ref := classify(t, fm.Graph, input, evalX, batch)
	floatAcc, _ := score(ref, ref, labels)
	dir := t.TempDir()
	evalPath := filepath.Join(dir, "eval.npy")
	writeNpy(t, evalPath, evalX)
	var out []accRow
	cx, err := npy.ReadFile(calib)
	if err != nil {
		t.Fatal(err)
	}
	var calBatches []map[string]*tensor.Tensor
	for lo := 0; lo < cx.Shape[0]; lo += batch {
		calBatches = append(calBatches, map[string]*tensor.Tensor{input: rows(cx, lo, min(lo+batch, cx.Shape[0]))})
	}
	// x86 as the preset has it (GPTQ weight rounding), then variants:
	// nearest rounding, bias correction, and ort-default with GPTQ. The
	// last row is ort-default as it is, the baseline.
	for _, preset := range []string{"x86", "x86 nearest", "x86+biascorr", "ort-def+gptq", "ort-default"} {
		base := strings.Fields(strings.TrimSuffix(strings.TrimSuffix(preset, "+biascorr"), "+gptq"))[0]
		if base == "ort-def" {
			base = "ort-default"
		}
		cfg := loadPreset(t, base)
		switch {
		case strings.HasSuffix(preset, " nearest"):
			cfg.Weight.Rounding = "nearest"
		case strings.HasSuffix(preset, "+gptq"):
			cfg.Weight.Rounding = "gptq"
		}
		m := loadFused(t, modelPath)
		fb, err := model.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		tab := calibrateGraph(t, m.Graph, calib, cfg, nil, 0, 0)
		var so StaticOptions
		if cfg.GPTQ() {
			if so.Rounding, err = OptimizeWeights(context.Background(), m.Graph, calBatches, cfg, RoundingOptions{Threads: 2}); err != nil {
				t.Fatal(err)
			}
		}
		rep, err := Static(m.Graph, tab, cfg, so)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(preset, "+biascorr") {
			f, err := model.LoadBytes(fb, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := CorrectBias(m.Graph, f.Graph, calBatches, 2); err != nil {
				t.Fatal(err)
			}
		}
		qpath := filepath.Join(dir, preset+".onnx")
		if err := model.Save(m, qpath); err != nil {
			t.Fatal(err)
		}
		qm, err := model.Load(qpath)
		if err != nil {
			t.Fatal(err)
		}
		pred := classify(t, qm.Graph, input, evalX, batch)
		r := accRow{preset: preset, floatAcc: floatAcc, quantized: rep.QuantizedTotal(), leftFloat: len(rep.Float)}
		r.acc, r.agree = score(pred, ref, labels)
		outName := qm.Graph.Outputs[0].Name
		if fixedBatch(qm.Graph) && evalX.Shape[0] > 1 {
			r.ortErr = errors.New("not run (the model has a fixed batch of 1)")
		} else if res, err := runORT(t, qpath, map[string]*tensor.Tensor{input: evalX}, []string{outName}); err != nil {
			r.ortErr = err
		} else {
			y := res[outName]
			per := y.Len() / evalX.Shape[0]
			op := make([]int, evalX.Shape[0])
			for i := range op {
				op[i] = argmax(y.F32()[i*per : (i+1)*per])
			}
			r.ortAcc, r.ortAgree = score(op, ref, labels)
		}
		out = append(out, r)
	}
	return out
}

func printRows(t *testing.T, what string, rows []accRow) {
	t.Logf("%s", what)
	t.Logf("  %-12s %8s %8s %8s %8s | %10s %10s", "preset", "float", "int8", "drop pt", "agree", "ORT int8", "ORT agree")
	for _, r := range rows {
		ort := fmt.Sprintf("%10.4f %10.4f", r.ortAcc, r.ortAgree)
		if r.ortErr != nil {
			ort = "ORT: " + r.ortErr.Error()
		}
		t.Logf("  %-12s %8.4f %8.4f %8.2f %8.4f | %s   (%d nodes quantized, %d left float)", r.preset, r.floatAcc, r.acc, 100*(r.floatAcc-r.acc), r.agree, ort, r.quantized, r.leftFloat)
	}
}

// checkGoals prints whether the x86 preset meets issue 8's goals, and
// fails when it falls below floor (what it reached when this test was
// written, less a margin) or clearly below ort-default: a regression.
func checkGoals(t *testing.T, rows []accRow, agreeGoal, dropGoal, floor float64) {
	x86, ort := rows[0], rows[len(rows)-1]
	drop := x86.floatAcc - x86.acc
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	t.Logf("goal agreement >= %.1f%%: %s (%.2f%%); goal drop <= %.2f pt: %s (%.2f pt)",
		100*agreeGoal, met(x86.agree >= agreeGoal), 100*x86.agree, 100*dropGoal, met(drop <= dropGoal), 100*drop)
	if x86.agree < floor {
		t.Errorf("x86 preset: agreement with float %.4f fell below %.4f", x86.agree, floor)
	}
	// Within noise (mnist-8: 1 digit in 9,000 apart), but clearly not worse.
	if x86.agree < ort.agree-0.002 {
		t.Errorf("x86 preset agrees with float less than ort-default (%.4f < %.4f)", x86.agree, ort.agree)
	}
}

// TestAccuracyMNIST: mnist-8 calibrated on the first 1,000 t10k digits,
// evaluated on the other 9,000 (QTOOL_ACCURACY=full; else 2,000 of them).
func TestAccuracyMNIST(t *testing.T) {
	x, labels := mnist(t)
	dir := t.TempDir()
	calib := filepath.Join(dir, "calib.npy")
	writeNpy(t, calib, rows(x, 0, 1000))
	hi := 10000
	if !fullAccuracy {
		hi = 3000
	}
	evalX := rows(x, 1000, hi)
	rows := accuracyCase(t, shared(t, "models/mnist-8/mnist-8.onnx"), calib, evalX, labels[1000:hi], 1)
	printRows(t, fmt.Sprintf("mnist-8: calibrated on t10k[0:1000], evaluated on t10k[1000:%d]", hi), rows)
	checkGoals(t, rows, 0.999, 0.0005, 0.998)
}

var cifarCache struct {
	sync.Mutex
	x      *tensor.Tensor
	labels []int
}

// cifar reads the CIFAR-10 test JPEGs (pixels/256, NHWC) with labels, once
// per test binary.
func cifar(t testing.TB, g *graph.Graph) (*tensor.Tensor, []int) {
	cifarCache.Lock()
	defer cifarCache.Unlock()
	if cifarCache.x == nil {
		cifarCache.x, cifarCache.labels = readCIFAR(t, g)
	}
	return cifarCache.x, cifarCache.labels
}

func readCIFAR(t testing.TB, g *graph.Graph) (*tensor.Tensor, []int) {
	ds, err := calibrate.Open([]calibrate.DataSpec{{Path: shared(t, "data/cifar10/cifar10-test-jpg.tar")}}, calibrate.InputSpecs(g),
		calibrate.Options{Batch: 500, Preprocess: &calibrate.Preprocess{Divisor: 256, Layout: "nhwc"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	var data []float32
	var labels []int
	it := ds.Iter()
	for {
		b, err := it.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range b.Inputs {
			data = append(data, v.F32()...)
		}
		labels = append(labels, b.Labels...)
	}
	return tensor.FromFloat32([]int{len(labels), 32, 32, 3}, data), labels
}

// cifarSplit is issue 8's squeezenet-cifar10 split of the CIFAR-10 test
// JPEGs: the first 100 of each class to calibrate, the other 9,000 to
// evaluate (QTOOL_ACCURACY=full; else every 9th of them), with their labels.
func cifarSplit(t testing.TB, g *graph.Graph) (calX, evX *tensor.Tensor, evLabels []int) {
	x, labels := cifar(t, g)
	per := map[int]int{}
	var cal, ev []int
	for i, l := range labels {
		if per[l] < 100 {
			per[l]++
			cal = append(cal, i)
		} else {
			ev = append(ev, i)
		}
	}
	if !fullAccuracy {
		var sub []int
		for i := 0; i < len(ev); i += 9 {
			sub = append(sub, ev[i])
		}
		ev = sub
	}
	pick := func(idx []int) *tensor.Tensor {
		const n = 32 * 32 * 3
		out := make([]float32, 0, len(idx)*n)
		for _, i := range idx {
			out = append(out, x.F32()[i*n:(i+1)*n]...)
		}
		return tensor.FromFloat32([]int{len(idx), 32, 32, 3}, out)
	}
	for _, i := range ev {
		evLabels = append(evLabels, labels[i])
	}
	return pick(cal), pick(ev), evLabels
}

// TestAccuracySqueezeNet: squeezenet-cifar10 calibrated on 1,000 test JPEGs
// (the first 100 of each class) and evaluated on the other 9,000
// (QTOOL_ACCURACY=full; else every 9th of them).
func TestAccuracySqueezeNet(t *testing.T) {
	path := shared(t, "models/squeezenet-cifar10/squeezenet_cifar10.onnx")
	fm, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	calX, evX, evLabels := cifarSplit(t, fm.Graph)
	dir := t.TempDir()
	calib := filepath.Join(dir, "calib.npy")
	writeNpy(t, calib, calX)
	rows := accuracyCase(t, path, calib, evX, evLabels, 100)
	printRows(t, fmt.Sprintf("squeezenet-cifar10: calibrated on 100 JPEGs per class, evaluated on %d others", evX.Shape[0]), rows)
	checkGoals(t, rows, 0.99, 0.003, 0.975)
}
