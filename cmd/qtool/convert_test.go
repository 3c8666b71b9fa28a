package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// classifyDigits runs a model on the example digits and returns the argmax
// of each (the files are named digitN_labelL.npy).
func classifyDigits(t *testing.T, path string) (got, want []int) {
	t.Helper()
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtime.NewSession(m.Graph, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(exampleDigits, "digit*_label*.npy"))
	for _, f := range files {
		x, err := npy.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.Run(map[string]*tensor.Tensor{s.InputNames()[0]: x})
		if err != nil {
			t.Fatal(err)
		}
		y := out[s.OutputNames()[0]].F32()
		best := 0
		for i := range y {
			if y[i] > y[best] {
				best = i
			}
		}
		got = append(got, best)
		want = append(want, int(f[len(f)-5]-'0'))
	}
	return got, want
}

func TestQuantizeAndConvert(t *testing.T) {
	dir := t.TempDir()
	mp := filepath.Join(exampleMNIST, "mnist-8.onnx")
	check := func(name string, args ...string) string {
		t.Helper()
		out := filepath.Join(dir, name+".onnx")
		code, stdout, errOut := runCLI(t, append(args, "-o", out)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		if !strings.Contains(stdout, "nodes quantized") || !strings.Contains(stdout, "size ") {
			t.Fatalf("%v: summary missing: %q", args, stdout)
		}
		got, want := classifyDigits(t, out)
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: digit %d classified %d, want %d", name, i, got[i], want[i])
			}
		}
		return stdout
	}
	for _, preset := range []string{"x86", "arm", "ort-default"} {
		cfg := filepath.Join("../../configs", preset+".yaml")
		out := check("q-"+preset, "quantize", mp, "--data", exampleDigits, "--config", cfg)
		if !strings.Contains(out, "Conv") || !strings.Contains(out, "Relu (absorbed)") {
			t.Errorf("%s: %q", preset, out)
		}
	}
	check("q-qop", "quantize", mp, "--data", exampleDigits, "--format", "qoperator")
	if out := check("q-bc", "quantize", mp, "--data", exampleDigits, "--bias-correction", "4"); !strings.Contains(out, "bias correction: 2 convolutions on 4 samples") {
		t.Errorf("bias correction: %q", out)
	}
	table := filepath.Join(dir, "t.json")
	if code, _, errOut := runCLI(t, "calibrate", mp, "--data", exampleDigits, "-o", table, "--quiet"); code != 0 {
		t.Fatalf("calibrate: %s", errOut)
	}
	check("c-qdq", "convert", mp, "--table", table)
	check("c-qop", "convert", mp, "--table", table, "--format", "qoperator")
	check("c-fold", "convert", filepath.Join(dir, "c-qdq.onnx"), "--format", "qoperator")
	check("c-dyn", "convert", mp, "--dynamic")
	check("c-fp16", "convert", mp, "--fp16")
	check("q-dyn", "quantize", mp, "--config", "../../configs/dynamic.yaml")
	check("q-fp16", "quantize", mp, "--config", "../../configs/fp16.yaml")
	// The weights are int8 initializers (zero points are scalars or one
	// per channel, and are not counted).
	m, err := model.Load(filepath.Join(dir, "c-qdq.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	int8s := 0
	for _, v := range m.Graph.Initializers {
		if v.Const.DType == tensor.Int8 && v.Const.Rank() > 1 {
			int8s++
		}
	}
	if int8s != 3 {
		t.Errorf("QDQ model has %d int8 initializers, want 3 (two convs and the Gemm)", int8s)
	}
}

func TestConvertBadInput(t *testing.T) {
	dir := t.TempDir()
	mp := filepath.Join(exampleMNIST, "mnist-8.onnx")
	table := filepath.Join(dir, "t.json")
	if code, _, errOut := runCLI(t, "calibrate", mp, "--data", exampleDigits, "-o", table, "--quiet"); code != 0 {
		t.Fatalf("calibrate: %s", errOut)
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	out := filepath.Join(dir, "o.onnx")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"convert", mp, "-o", out}, "needs --table"},
		{[]string{"convert", mp, "--format", "qoperator", "-o", out}, "nothing to fold"},
		{[]string{"convert", mp, "--table", table}, "-o OUT.onnx"},
		{[]string{"convert", mp, "--table", table, "--dynamic", "-o", out}, "one of --table"},
		{[]string{"convert", mp, "--table", table, "-o", mp}, ""},
		{[]string{"convert", mp, "--table", filepath.Join(dir, "none.json"), "-o", out}, "none.json"},
		{[]string{"convert", mp, "--table", table, "--format", "tflite", "-o", out}, "format"},
		{[]string{"convert", mp, "--table", table, "-o", out, "--config", write("typo.yaml", "quantization:\n  wieght: {dtype: qint8}\n")}, "wieght"},
		{[]string{"convert", mp, "--table", table, "-o", out, "--config", write("dt.yaml", "quantization:\n  weight: {dtype: qint4}\n")}, "weight.dtype"},
		{[]string{"convert", mp, "--table", table, "-o", out, "--config", write("both.yaml", "quantization:\n  exclude: {op_types: [Conv]}\n  op_types: [{op_type: Conv, weight: {granularity: per_tensor}}]\n")}, "both excluded and configured"},
		{[]string{"convert", mp, "--table", table, "-o", out, "--config", write("glob.yaml", "quantization:\n  nodes: [{name: \"nosuch*\", weight: {granularity: per_tensor}}]\n")}, "matches no node"},
		{[]string{"convert", mp, "--table", table, "-o", out, "--config", write("nr.yaml", "quantization:\n  weight: {scheme: affine, narrow_range: true}\n")}, "narrow_range"},
		{[]string{"quantize", mp, "-o", out}, "no data"},
		{[]string{"quantize", mp, "--data", exampleDigits, "--format", "qoperator", "--bias-correction", "2", "-o", out}, "static QDQ"},
	} {
		code, _, errOut := runCLI(t, c.args...)
		if code != exitInput || !strings.Contains(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q (want exit 2 mentioning %q)", c.args[1:], code, errOut, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed convert wrote %s", out)
	}
}

func TestConvertExcludeKeepsFloat(t *testing.T) {
	dir := t.TempDir()
	mp := filepath.Join(exampleMNIST, "mnist-8.onnx")
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("quantization:\n  exclude: {op_types: [Gemm]}\n"), 0o644)
	out := filepath.Join(dir, "o.onnx")
	code, stdout, errOut := runCLI(t, "quantize", mp, "--data", exampleDigits, "--config", cfg, "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(stdout, "left float") || !strings.Contains(stdout, "excluded by the config") {
		t.Fatalf("summary: %q", stdout)
	}
	m, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Gemm" && n.Inputs[1].Const == nil {
			t.Errorf("the excluded Gemm reads a dequantized weight")
		}
	}
}
