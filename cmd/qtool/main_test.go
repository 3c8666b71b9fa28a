package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// runCLI runs qtool in-process and returns exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.Execute()
	code := exitOK
	if err != nil {
		errb.WriteString("qtool: " + oneLine(err.Error()) + "\n")
		code = exitInput
		if ee, ok := err.(*exitError); ok {
			code = ee.code
		}
	}
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "qtool ") {
		t.Fatalf("code %d out %q", code, out)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"run"},                       // missing MODEL
		{"run", "m.onnx", "--nosuch"}, // unknown flag
		{"inspect"},
		{"nosuchcommand"},
	} {
		if code, _, _ := runCLI(t, args...); code != exitInput {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestMissingModelIsBadInput(t *testing.T) {
	code, _, errOut := runCLI(t, "inspect", "/nonexistent/model.onnx")
	if code != exitInput || !strings.Contains(errOut, "/nonexistent/model.onnx") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
}

// Flags win over QTOOL_* variables, which win over the config file.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "q.yaml")
	if err := os.WriteFile(cfg, []byte("threads: 3\nquiet: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	get := func(env string, args ...string) (int, bool) {
		t.Setenv("QTOOL_THREADS", env)
		if env == "" {
			os.Unsetenv("QTOOL_THREADS")
		}
		s := &settings{v: newViper()}
		cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
		cmd.Flags().String("config", "", "")
		cmd.Flags().Int("threads", 0, "")
		cmd.Flags().Bool("quiet", false, "")
		if err := cmd.Flags().Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := s.load(cmd); err != nil {
			t.Fatal(err)
		}
		return s.v.GetInt("threads"), s.quiet()
	}
	if n, q := get("", "--config", cfg); n != 3 || !q {
		t.Errorf("file: threads %d quiet %v", n, q)
	}
	if n, _ := get("5", "--config", cfg); n != 5 {
		t.Errorf("env over file: threads %d", n)
	}
	if n, _ := get("5", "--config", cfg, "--threads", "7"); n != 7 {
		t.Errorf("flag over env: threads %d", n)
	}
}

func TestBadConfigIsBadInput(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.yaml")
	os.WriteFile(cfg, []byte("threads: [unclosed\n"), 0o644)
	code, _, errOut := runCLI(t, "version", "--config", cfg)
	if code != exitInput || !strings.Contains(errOut, "bad.yaml") {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "version", "--config", filepath.Join(dir, "missing.yaml"))
	if code != exitInput || !strings.Contains(errOut, "missing.yaml") {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
}

func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, _ := runCLI(t, "completion", sh)
		if code != 0 || !strings.Contains(out, "qtool") {
			t.Errorf("%s: code %d", sh, code)
		}
	}
}

func TestFileName(t *testing.T) {
	for in, want := range map[string]string{"out": "out", "a/b:c": "a_b_c", "": "_", ".hidden": "_.hidden", "../x": "_.._x"} {
		if got := fileName(in); got != want {
			t.Errorf("fileName(%q) = %q, want %q", in, got, want)
		}
	}
}

// The demo's model and digits: qtool run must classify the four real MNIST
// test digits as their labels (7 2 1 0, from the IDX label file).
func TestRunMNISTDigits(t *testing.T) {
	files, _ := filepath.Glob("../../examples/mnist/digits/digit*_label*.npy")
	if len(files) != 4 {
		t.Fatalf("found %d example digits", len(files))
	}
	for _, f := range files {
		label := strings.TrimSuffix(f[strings.LastIndex(f, "label")+5:], ".npy")
		out := t.TempDir()
		code, stdout, stderr := runCLI(t, "run", "../../examples/mnist/mnist-8.onnx", "--input", f, "--output-dir", out, "--print", "--threads", "1")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", f, code, stderr)
		}
		if !strings.Contains(stdout, "argmax: ["+label+"]") {
			t.Errorf("%s: want argmax %s, got\n%s", f, label, stdout)
		}
		if _, err := os.Stat(filepath.Join(out, "Plus214_Output_0.npy")); err != nil {
			t.Error(err)
		}
	}
}

func TestRunBadInputs(t *testing.T) {
	m := "../../examples/mnist/mnist-8.onnx"
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.npy")
	os.WriteFile(bad, []byte("not numpy"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", m, "--input", bad}, "bad.npy"},
		{[]string{"run", m, "--input", "nosuch=" + bad}, "no input"},
		{[]string{"run", m}, "no --input"},
		{[]string{"run", m, "--input", filepath.Join(dir, "x.txt")}, "unknown input format"},
	} {
		code, _, stderr := runCLI(t, c.args...)
		if code != exitInput || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d stderr %q, want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

func TestInspectJSON(t *testing.T) {
	code, out, _ := runCLI(t, "inspect", "../../examples/mnist/mnist-8.onnx", "--json")
	if code != 0 || !strings.Contains(out, `"Conv": 2`) || !strings.Contains(out, `"Input3"`) {
		t.Fatalf("code %d out %s", code, out)
	}
}

func TestFuseCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "fused.onnx")
	m := "../../examples/mnist/mnist-8.onnx"
	code, stdout, stderr := runCLI(t, "fuse", m, "-o", out)
	if code != 0 || !strings.Contains(stdout, "Conv+Relu") {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	// The fused model classifies the demo digit like the original.
	code, stdout, _ = runCLI(t, "run", out, "--input", "../../examples/mnist/digits/digit0_label7.npy", "--output-dir", dir, "--print")
	if code != 0 || !strings.Contains(stdout, "argmax: [7]") {
		t.Fatalf("fused model: exit %d: %s", code, stdout)
	}
	// Never over the input.
	code, _, stderr = runCLI(t, "fuse", out, "-o", out)
	if code != exitInput || !strings.Contains(stderr, "overwrite") {
		t.Fatalf("fuse over its input: exit %d %s", code, stderr)
	}
	if code, _, _ := runCLI(t, "fuse", m); code != exitInput {
		t.Fatalf("missing -o: exit %d", code)
	}
}

// The demo's pipeline: quantize mnist-8 on the example calibration digits,
// then eval against the float model on the other example digits. The int8
// file must be smaller than the float one and keep its accuracy.
func TestDemoPipeline(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "mnist-8.int8.onnx")
	m := "../../examples/mnist/mnist-8.onnx"
	code, stdout, stderr := runCLI(t, "quantize", m, "--data", "../../examples/mnist/calib.npz", "--config", "../../configs/x86.yaml", "-o", q)
	if code != 0 {
		t.Fatalf("quantize: exit %d: %s %s", code, stdout, stderr)
	}
	fi, err1 := os.Stat(q)
	fo, err2 := os.Stat(m)
	if err1 != nil || err2 != nil || fi.Size() >= fo.Size() {
		t.Fatalf("int8 model %v bytes, float %v bytes (%v %v)", fi.Size(), fo.Size(), err1, err2)
	}
	code, stdout, stderr = runCLI(t, "eval", m, q, "--data", "../../examples/mnist/eval.npz", "--labels", "../../examples/mnist/eval_labels.npy", "--json")
	if code != 0 {
		t.Fatalf("eval: exit %d: %s %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "agreement") {
		t.Fatalf("eval output: %s", stdout)
	}
}
