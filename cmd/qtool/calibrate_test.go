package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/calibrate"
)

// The MNIST example folder (four digits as .npy, the model beside them) is
// an npy-folder dataset.
const (
	exampleMNIST  = "../../examples/mnist"
	exampleDigits = exampleMNIST + "/digits" // four test digits, one .npy each: a folder dataset
)

func TestCalibrateAndMerge(t *testing.T) {
	dir := t.TempDir()
	mp := filepath.Join(exampleMNIST, "mnist-8.onnx")
	a := filepath.Join(dir, "a.json")
	code, out, errOut := runCLI(t, "calibrate", mp, "--data", exampleDigits, "--limit", "2", "-o", a)
	if code != 0 {
		t.Fatalf("calibrate: exit %d, %s", code, errOut)
	}
	if !strings.Contains(out, "on 2 samples") || errOut != "" {
		t.Fatalf("stdout %q stderr %q", out, errOut)
	}
	ta, err := calibrate.ReadTable(a)
	if err != nil {
		t.Fatal(err)
	}
	if ta.Dataset.Samples != 2 || ta.Lookup("Input3") == nil {
		t.Fatalf("table: %+v", ta.Dataset)
	}
	// Flags from the config file; the observer flag wins over it.
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(`offset: 2
observer: histogram
calibration:
  weight: {observer: minmax, qscheme: per_tensor_symmetric}
  op_types:
    - {op_type: Relu, observer: percentile, percentile: 99.5}
  tensors:
    - name: Plus214_Output_0
      observer: entropy
`), 0o644)
	b := filepath.Join(dir, "b.json")
	if code, _, errOut := runCLI(t, "calibrate", mp, "--data", exampleDigits, "--config", cfg, "--observer", "minmax", "-o", b, "--quiet"); code != 0 {
		t.Fatalf("calibrate with config: exit %d, %s", code, errOut)
	}
	tb, err := calibrate.ReadTable(b)
	if err != nil {
		t.Fatal(err)
	}
	if tb.Dataset.Samples != 2 || tb.Dataset.Offset != 2 || tb.Lookup("Input3").Observer.Kind != "minmax" {
		t.Fatalf("config not applied: %+v, input observer %s", tb.Dataset, tb.Lookup("Input3").Observer.Kind)
	}
	kinds := map[string]int{}
	for _, e := range tb.Tensors {
		if e.Role == calibrate.RoleWeight && e.QScheme != "per_tensor_symmetric" {
			t.Fatalf("weight %s: %s", e.Name, e.QScheme)
		}
		kinds[string(e.Observer.Kind)]++
	}
	if kinds["percentile"] != 2 || kinds["entropy"] != 1 || tb.Lookup("Plus214_Output_0").Observer.Kind != "entropy" {
		t.Fatalf("observer kinds %v", kinds)
	}
	// Merging tables of different observer settings is refused (exit 2);
	// the same settings merge.
	if code, _, errOut := runCLI(t, "calibrate", "merge", a, b, "-o", filepath.Join(dir, "ab.json")); code != exitInput || !strings.Contains(errOut, "incompatible") {
		t.Fatalf("merge of different settings: exit %d, %s", code, errOut)
	}
	c := filepath.Join(dir, "c.json")
	if code, _, errOut := runCLI(t, "calibrate", mp, "--data", exampleDigits, "--offset", "2", "-o", c, "--quiet"); code != 0 {
		t.Fatalf("calibrate second half: exit %d, %s", code, errOut)
	}
	all := filepath.Join(dir, "all.json")
	if code, out, errOut := runCLI(t, "calibrate", "merge", a, c, "-o", all); code != 0 || !strings.Contains(out, "4 samples") {
		t.Fatalf("merge: exit %d, %q %s", code, out, errOut)
	}
	if tm, err := calibrate.ReadTable(all); err != nil || tm.Dataset.Samples != 4 {
		t.Fatalf("merged table: %v", err)
	}
	// Never over an input.
	before, _ := os.ReadFile(a)
	if code, _, errOut := runCLI(t, "calibrate", "merge", a, c, "-o", a); code != exitInput || !strings.Contains(errOut, "refusing") {
		t.Fatalf("merge over an input: exit %d, %s", code, errOut)
	}
	if after, _ := os.ReadFile(a); !bytes.Equal(before, after) {
		t.Fatal("input table changed")
	}
}

func TestCalibrateBadInput(t *testing.T) {
	dir := t.TempDir()
	mp := filepath.Join(exampleMNIST, "mnist-8.onnx")
	out := filepath.Join(dir, "t.json")
	// A sample of the wrong shape: exit 2, one line naming the file.
	wrong := filepath.Join(dir, "wrong")
	os.MkdirAll(wrong, 0o755)
	b, _ := os.ReadFile(filepath.Join(exampleDigits, "digit0_label7.npy"))
	// Same bytes, header claiming 784 values in a flat row: (1, 784).
	s := strings.Replace(string(b), "(1, 1, 28, 28)", "(1, 784)     ", 1)
	os.WriteFile(filepath.Join(wrong, "x.npy"), []byte(s), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"calibrate", mp, "--data", wrong, "-o", out}, "x.npy"},
		{[]string{"calibrate", mp, "--data", exampleDigits}, "-o"},
		{[]string{"calibrate", mp, "-o", out}, "no data"},
		{[]string{"calibrate", mp, "--data", exampleDigits, "--observer", "bogus", "-o", out}, "unknown observer"},
		{[]string{"calibrate", mp, "--data", "nosuch=" + exampleDigits, "-o", out}, `no input "nosuch"`},
		{[]string{"calibrate", mp, "--data", exampleDigits, "-o", mp}, "refusing"},
		{[]string{"calibrate", "merge", out, "-o", out}, "requires at least 2"},
	} {
		code, _, errOut := runCLI(t, c.args...)
		if code != exitInput || !strings.Contains(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q (want exit 2 mentioning %q)", c.args, code, errOut, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a failed run left an output file")
	}
}

// An interrupted calibration (SIGINT cancels the command's context) writes
// nothing.
func TestCalibrateInterrupted(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "t.json")
	root := newRootCmd()
	var so, se bytes.Buffer
	root.SetOut(&so)
	root.SetErr(&se)
	root.SetArgs([]string{"calibrate", filepath.Join(exampleMNIST, "mnist-8.onnx"), "--data", exampleDigits, "-o", out})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := root.ExecuteContext(ctx)
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("cancelled run: %v", err)
	}
	if ee, ok := err.(*exitError); !ok || ee.code != exitWork {
		t.Fatalf("exit code: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("files left behind: %v", entries)
	}
}

func TestCalibrateHelp(t *testing.T) {
	code, out, _ := runCLI(t, "calibrate", "--help")
	for _, w := range []string{"--data", "--shuffle", "--seed", "--limit", "--batch", "--observer", "preprocess", "qtool calibrate merge"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("help lacks %q", w)
		}
	}
}
