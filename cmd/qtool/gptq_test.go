package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuantizeGPTQ: the defaults (the x86 preset's content) round weights
// with GPTQ in quantize, which says so; rounding: nearest writes other
// integers; convert, which has no samples, rounds to nearest and says why.
func TestQuantizeGPTQ(t *testing.T) {
	m := filepath.Join(exampleMNIST, "mnist-8.onnx")
	data := mnistSamples(t)
	dir := t.TempDir()
	g := filepath.Join(dir, "g.onnx")
	code, stdout, stderr := runCLI(t, "quantize", m, "--data", data, "-o", g, "--rounding-samples", "10")
	if code != 0 {
		t.Fatalf("quantize: exit %d: %s", code, stderr)
	}
	// mnist-8: two convolutions and the final MatMul.
	if !strings.Contains(stdout, "GPTQ weight rounding: 3 layers on 10 samples") || !strings.Contains(stdout, "(3 weights rounded by GPTQ)") {
		t.Errorf("quantize summary does not report GPTQ:\n%s", stdout)
	}
	cfg := filepath.Join(dir, "nearest.yaml")
	if err := os.WriteFile(cfg, []byte("quantization:\n  weight: {rounding: nearest}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := filepath.Join(dir, "n.onnx")
	code, stdout, stderr = runCLI(t, "quantize", m, "--data", data, "-o", n, "--config", cfg)
	if code != 0 {
		t.Fatalf("quantize nearest: exit %d: %s", code, stderr)
	}
	if strings.Contains(stdout, "GPTQ weight rounding") || strings.Contains(stdout, "rounded by GPTQ") {
		t.Errorf("rounding nearest still reports GPTQ:\n%s", stdout)
	}
	if bytes.Equal(readAll(t, g), readAll(t, n)) {
		t.Error("GPTQ and nearest rounding wrote the same model")
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("quantization:\n  weight: {rounding: stochastic}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, "quantize", m, "--data", data, "-o", filepath.Join(dir, "x.onnx"), "--config", bad); code != 2 || !strings.Contains(stderr, "weight.rounding") {
		t.Errorf("rounding stochastic: exit %d, %q; want 2 naming weight.rounding", code, stderr)
	}
	if code, _, stderr := runCLI(t, "quantize", m, "--data", data, "-o", filepath.Join(dir, "x.onnx"), "--rounding-samples", "0"); code != 2 || !strings.Contains(stderr, "rounding-samples") {
		t.Errorf("--rounding-samples 0: exit %d, %q; want 2", code, stderr)
	}
	table := filepath.Join(dir, "t.json")
	mustRun(t, "calibrate", m, "--data", data, "-o", table)
	code, _, stderr = runCLI(t, "convert", m, "--table", table, "-o", filepath.Join(dir, "c.onnx"))
	if code != 0 || !strings.Contains(stderr, "rounded to nearest") {
		t.Errorf("convert with GPTQ configured: exit %d, stderr %q; want a note that it rounds to nearest", code, stderr)
	}
}

// TestQuantizeA16Summary: a node override asking for 16-bit activations is
// reported in the summary.
func TestQuantizeA16Summary(t *testing.T) {
	m := filepath.Join(exampleMNIST, "mnist-8.onnx")
	data := mnistSamples(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "a16.yaml")
	if err := os.WriteFile(cfg, []byte("quantization:\n  nodes: [{name: Convolution28, activation: {dtype: quint16}}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "quantize", m, "--data", data, "-o", filepath.Join(dir, "q.onnx"), "--config", cfg)
	if code != 0 {
		t.Fatalf("quantize: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "activations stored in 16 bits)") {
		t.Errorf("summary does not report the 16-bit activations:\n%s", stdout)
	}
}

// TestQuantizeA16Auto: --a16-auto picks layers, says which, and writes a
// model with 16-bit activations; a negative count is refused.
func TestQuantizeA16Auto(t *testing.T) {
	m := filepath.Join(exampleMNIST, "mnist-8.onnx")
	data := mnistSamples(t)
	dir := t.TempDir()
	code, stdout, stderr := runCLI(t, "quantize", m, "--data", data, "-o", filepath.Join(dir, "q.onnx"), "--a16-auto", "1", "--rounding-samples", "8")
	if code != 0 {
		t.Fatalf("quantize --a16-auto 1: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "16-bit activations: output SQNR") || !strings.Contains(stdout, "activations stored in 16 bits)") {
		t.Errorf("summary does not report the promotion:\n%s", stdout)
	}
	if code, _, stderr := runCLI(t, "quantize", m, "--data", data, "-o", filepath.Join(dir, "x.onnx"), "--a16-auto", "-1"); code != 2 || !strings.Contains(stderr, "a16-auto") {
		t.Errorf("--a16-auto -1: exit %d, %q; want 2", code, stderr)
	}
}
