package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/tensor"
)

// TestConvertFP16Full: --fp16-full writes a float16 model with float32 I/O
// that classifies the example digits as the float model labels them;
// --fp16-io makes the I/O float16; the preset and config keys do the same
// through quantize; contradictory flags and keys are bad usage (exit 2).
func TestConvertFP16Full(t *testing.T) {
	dir := t.TempDir()
	mp := filepath.Join(exampleMNIST, "mnist-8.onnx")
	out := filepath.Join(dir, "f16.onnx")
	code, stdout, errOut := runCLI(t, "convert", mp, "--fp16-full", "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(stdout, "(fp16 full)") || !strings.Contains(stdout, "Conv (float16)") {
		t.Errorf("summary: %q", stdout)
	}
	m, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Graph.Inputs[0].DType != tensor.Float32 || m.Graph.Outputs[0].DType != tensor.Float32 {
		t.Errorf("I/O %v -> %v, want float32", m.Graph.Inputs[0].DType, m.Graph.Outputs[0].DType)
	}
	f16 := 0
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Conv" && n.Inputs[1].Const != nil && n.Inputs[1].Const.DType == tensor.Float16 && n.Outputs[0].DType == tensor.Float16 {
			f16++
		}
	}
	if f16 != 2 {
		t.Errorf("%d float16 convs, want 2", f16)
	}
	got, want := classifyDigits(t, out)
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("digit %d classified %d, want %d", i, got[i], want[i])
		}
	}

	out = filepath.Join(dir, "f16io.onnx")
	if code, _, errOut := runCLI(t, "convert", mp, "--fp16-full", "--fp16-io", "-o", out, "--quiet"); code != 0 {
		t.Fatalf("--fp16-io: exit %d: %s", code, errOut)
	}
	if m, err = model.Load(out); err != nil {
		t.Fatal(err)
	}
	if m.Graph.Inputs[0].DType != tensor.Float16 || m.Graph.Outputs[0].DType != tensor.Float16 {
		t.Errorf("--fp16-io: I/O %v -> %v, want float16", m.Graph.Inputs[0].DType, m.Graph.Outputs[0].DType)
	}

	out = filepath.Join(dir, "q16.onnx")
	if code, stdout, errOut := runCLI(t, "quantize", mp, "--config", "../../configs/fp16-full.yaml", "-o", out); code != 0 || !strings.Contains(stdout, "(fp16 full)") {
		t.Fatalf("quantize with fp16-full.yaml: exit %d: %s %s", code, stdout, errOut)
	}

	bad := filepath.Join(dir, "bad.yaml")
	for _, c := range []struct {
		cfg  string
		args []string
		msg  string
	}{
		{"", []string{"--fp16-io"}, "--fp16-io needs --fp16-full"},
		{"", []string{"--fp16", "--fp16-full"}, "give one of"},
		{"", []string{"--dynamic", "--fp16-full"}, "give one of"},
		{"quantization:\n  fp16: {full: true}\n", nil, "fp16 settings need mode: fp16"},
		{"quantization:\n  mode: fp16\n  fp16: {keep_io_types: false}\n", []string{"--fp16"}, "apply to fp16.full"},
		{"quantization:\n  mode: fp16\n  fp16: {full: true, node_block_list: [nosuchnode]}\n", nil, "matches no node"},
	} {
		args := append([]string{"convert", mp, "-o", filepath.Join(dir, "x.onnx")}, c.args...)
		if c.cfg != "" {
			if err := os.WriteFile(bad, []byte(c.cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			args = append(args, "--config", bad)
		}
		code, _, errOut := runCLI(t, args...)
		if code != 2 || !strings.Contains(errOut, c.msg) {
			t.Errorf("%v %q: exit %d, %q; want 2 and %q", c.args, c.cfg, code, errOut, c.msg)
		}
	}
}
