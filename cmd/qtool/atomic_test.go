package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Outputs are written atomically and never over an input (issue 10).

// Every command that writes refuses an output that is one of its inputs,
// however the path is spelled, and leaves the input as it was.
func TestOutputNeverOverwritesAnInput(t *testing.T) {
	dir := t.TempDir()
	cp := func(src, name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, readAll(t, src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	model := cp(filepath.Join(exampleMNIST, "mnist-8.onnx"), "m.onnx")
	digit := cp(filepath.Join(exampleDigits, "digit0_label7.npy"), "d.npy")
	// run names its outputs after the model's outputs: an input file of
	// that name in --output-dir is an input too.
	asOutput := cp(digit, "Plus214_Output_0.npy")
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("calibration:\n  activation: {observer: minmax}\n"), 0o644)
	table := filepath.Join(dir, "t.json")
	mustRun(t, "calibrate", model, "--data", digit, "-o", table)
	link := filepath.Join(dir, "link.onnx")
	if err := os.Symlink("m.onnx", link); err != nil {
		t.Fatal(err)
	}
	dotted := filepath.Join(dir, "sub", "..", "m.onnx")
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)

	cases := [][]string{
		{"fuse", model, "-o", model},
		{"fuse", model, "-o", link},
		{"fuse", link, "-o", dotted},
		{"calibrate", model, "--data", digit, "-o", model},
		{"calibrate", model, "--data", digit, "-o", digit},
		{"calibrate", model, "--data", digit, "--config", cfg, "-o", cfg},
		{"calibrate", "merge", table, table, "-o", table},
		{"convert", model, "--dynamic", "-o", dotted},
		{"convert", model, "--table", table, "-o", table},
		{"convert", model, "--fp16", "-o", link},
		{"quantize", model, "--data", digit, "-o", model},
		{"quantize", model, "--data", digit, "-o", digit},
		{"run", model, "--input", asOutput, "--output-dir", dir},
	}
	before := map[string][]byte{}
	for _, p := range []string{model, digit, asOutput, cfg, table} {
		before[p] = readAll(t, p)
	}
	for _, args := range cases {
		code, _, stderr := runCLI(t, append(args, "--quiet")...)
		if code != exitInput || !strings.Contains(stderr, "refusing to overwrite an input") {
			t.Errorf("qtool %v: exit %d, stderr %q; want 2 and a refusal", args, code, stderr)
		}
	}
	for p, b := range before {
		if !bytes.Equal(readAll(t, p), b) {
			t.Errorf("%s changed", p)
		}
	}
	assertNoTemp(t, dir)
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

// A cancelled command (what SIGINT does) leaves the previous output as it
// was and no temporary file.
func TestCancelledCommandsKeepTheOldOutput(t *testing.T) {
	dir := t.TempDir()
	m := filepath.Join(exampleMNIST, "mnist-8.onnx")
	data := mnistSamples(t)
	for _, args := range [][]string{
		{"calibrate", m, "--data", data, "-o"},
		{"quantize", m, "--data", data, "-o"},
	} {
		out := filepath.Join(dir, args[0]+".out")
		os.WriteFile(out, []byte("previous result"), 0o644)
		root := newRootCmd()
		var so, se bytes.Buffer
		root.SetOut(&so)
		root.SetErr(&se)
		root.SetArgs(append(args, out))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := root.ExecuteContext(ctx)
		if ee, ok := err.(*exitError); !ok || ee.code != exitWork || !strings.Contains(err.Error(), "interrupted") {
			t.Errorf("%s cancelled: %v, want exit 1 and 'interrupted'", args[0], err)
		}
		if got := string(readAll(t, out)); got != "previous result" {
			t.Errorf("%s cancelled: the output became %.40q", args[0], got)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("files in the output folder: %v", ents)
	}
	assertNoTemp(t, dir)
}

// A real SIGINT in the middle of a calibration: the child process stops
// with exit 1, says it was interrupted, and writes nothing.
func TestSIGINTDuringCalibration(t *testing.T) {
	if testing.Short() {
		t.Skip("calibrates for about a second")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "many.npy")
	writeNPY(t, data, 12000, 1, 28, 28) // several times the 400 ms the interrupt waits, even on a fast machine
	out := filepath.Join(dir, "t.json")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	m, _ := filepath.Abs(filepath.Join(exampleMNIST, "mnist-8.onnx"))
	argv, _ := json.Marshal([]string{"calibrate", m, "--data", data, "--threads", "1", "-o", out})
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(argv))
	var errb bytes.Buffer
	cmd.Stderr = &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	el := time.Since(start)
	code := -1
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err == nil {
		code = 0
	}
	if code == 0 {
		t.Fatalf("the calibration finished in %v, before the interrupt: give it more data", el)
	}
	if code != exitWork || !strings.Contains(errb.String(), "interrupted") {
		t.Fatalf("after SIGINT: exit %d, stderr %q (signal handler not installed yet after 400ms?)", code, errb.String())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("files after the interrupt: %v", ents)
	}
	t.Logf("interrupted after %v", el)
}
