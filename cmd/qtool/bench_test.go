package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/tensor"
)

const mnistModel = "../../examples/mnist/mnist-8.onnx"

func TestBenchJSON(t *testing.T) {
	code, out, errOut := runCLI(t, "bench", mnistModel, "--runs", "3", "--warmup", "1", "--threads", "1", "--json", "--profile",
		"--input", "Input3=../../examples/mnist/digits/digit0_label7.npy")
	if code != 0 {
		t.Fatalf("code %d: %s", code, errOut)
	}
	var rep struct {
		Threads int `json:"threads"`
		Batch   int `json:"batch"`
		Models  []struct {
			Model  string `json:"model"`
			Inputs []struct {
				Source string `json:"source"`
			} `json:"inputs"`
			Runs      int `json:"runs"`
			LatencyMs struct {
				N                       int
				P50, P90, P99, Min, Max float64
			} `json:"latency_ms"`
			Throughput float64 `json:"throughput_per_s"`
			Activation int64   `json:"peak_activation_bytes"`
			Profile    *struct {
				ByOp []struct {
					Op      string  `json:"op"`
					Percent float64 `json:"percent"`
				} `json:"by_op"`
			} `json:"profile"`
		} `json:"models"`
		Memory *struct {
			PeakRSS int64 `json:"peak_rss_bytes"`
		} `json:"memory"`
		Comparison *json.RawMessage `json:"comparison"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if rep.Threads != 1 || rep.Batch != 1 || len(rep.Models) != 1 || rep.Comparison != nil {
		t.Fatalf("%s", out)
	}
	m := rep.Models[0]
	l := m.LatencyMs
	if m.Runs != 3 || l.N != 3 || !(l.Min > 0 && l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("latency %+v runs %d", l, m.Runs)
	}
	if len(m.Inputs) != 1 || !strings.HasSuffix(m.Inputs[0].Source, "digit0_label7.npy") {
		t.Errorf("inputs %+v", m.Inputs)
	}
	if m.Throughput <= 0 || m.Activation <= 0 || m.Profile == nil || len(m.Profile.ByOp) == 0 {
		t.Errorf("%s", out)
	}
	if _, err := os.Stat("/proc/self/status"); err == nil && (rep.Memory == nil || rep.Memory.PeakRSS <= 0) {
		t.Errorf("no peak RSS: %s", out)
	}
}

func TestBenchTwoModelsRatio(t *testing.T) {
	code, out, errOut := runCLI(t, "bench", mnistModel, mnistModel, "--runs", "3", "--warmup", "0", "--threads", "1")
	if code != 0 {
		t.Fatalf("code %d: %s", code, errOut)
	}
	if !strings.Contains(out, "mnist-8.onnx vs mnist-8.onnx: latency ratio") || !strings.Contains(out, "interleaved") {
		t.Errorf("no ratio:\n%s", out)
	}
	if errOut != "" {
		t.Errorf("stderr not empty (not a terminal): %q", errOut)
	}
}

func TestBenchBadInputs(t *testing.T) {
	dir := t.TempDir()
	notModel := filepath.Join(dir, "x.onnx")
	if err := os.WriteFile(notModel, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(dir, "wrong.npy")
	f, err := os.Create(wrong)
	if err != nil {
		t.Fatal(err)
	}
	// A valid .npy, but the model wants 1x1x28x28.
	if err := npy.Write(f, tensor.FromFloat32([]int{2}, []float32{1, 2})); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, args := range [][]string{
		{"bench"},
		{"bench", "a.onnx", "b.onnx", "c.onnx"},
		{"bench", filepath.Join(dir, "missing.onnx")},
		{"bench", notModel},
		{"bench", mnistModel, "--runs", "-1"},
		{"bench", mnistModel, "--batch", "0"},
		{"bench", mnistModel, "--tolerance", "0"},
		{"bench", mnistModel, "--input", "noequals.npy"},
		{"bench", mnistModel, "--dim", "sequence"},
		{"bench", mnistModel, "--dim", "sequence=-3"},
		{"bench", mnistModel, "--value", "sr=abc"},
		{"bench", mnistModel, "--value", "Input3=1e999"},
		{"bench", mnistModel, "--value", "sr=16000"}, // mnist has no input sr
		{"bench", mnistModel, "--dim", "sequence=512"},
		{"bench", mnistModel, "--input", "Input3=" + filepath.Join(dir, "missing.npy")},
		{"bench", mnistModel, "--input", "Input3=" + wrong, "--runs", "1"},
		{"bench", mnistModel, "--input", "nosuch=" + wrong, "--runs", "1"},
	} {
		code, _, errOut := runCLI(t, args...)
		if testing.Verbose() {
			t.Logf("%v: %s", args[1:], errOut)
		}
		if code != exitInput || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: code %d, stderr %q", args, code, errOut)
		}
	}
}
