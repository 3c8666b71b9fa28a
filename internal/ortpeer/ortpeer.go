// Package ortpeer runs ONNX Runtime, the peer the tests and benchmarks
// compare qtool with, through tools/peers/ort.js (npm onnxruntime-node,
// installed by `make peers`).
package ortpeer

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/tensor"
)

// Find returns node and tools/peers/ort.js, looked for in the working
// directory and above, or says what is missing.
func Find() (node, script string, err error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "tools", "peers", "node_modules", "onnxruntime-node")); err == nil {
			script = filepath.Join(dir, "tools", "peers", "ort.js")
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "", errors.New("onnxruntime-node not installed (make peers)")
		}
		dir = parent
	}
	if node, err = exec.LookPath("node"); err != nil {
		return "", "", errors.New("node not found")
	}
	return node, script, nil
}

// Need is Find for a test or benchmark, which it skips when ONNX Runtime
// is missing: it is the reference the test compares with.
func Need(tb testing.TB) (node, script string) {
	tb.Helper()
	node, script, err := Find()
	if err != nil {
		tb.Skip(err)
	}
	return node, script
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// FileName is the name ort.js gives an input or output's .npy file.
func FileName(name string) string {
	return unsafeName.ReplaceAllString(name, "_") + ".npy"
}

// Run runs the model file at path in ONNX Runtime on the inputs, with a
// graph optimization level ("all" is what users get, "disabled" runs a
// QDQ graph as written; "" is ort.js's default, "all"), and returns the
// named outputs. It skips tb when ONNX Runtime is missing.
func Run(tb testing.TB, path string, in map[string]*tensor.Tensor, outNames []string, level string) (map[string]*tensor.Tensor, error) {
	tb.Helper()
	node, script := Need(tb)
	dir := tb.TempDir()
	args := []string{script, "run", path, dir}
	for name, x := range in {
		f := filepath.Join(dir, "in_"+FileName(name))
		if err := writeNpy(f, x); err != nil {
			return nil, err
		}
		args = append(args, name+"="+f)
	}
	cmd := exec.Command(node, args...)
	if level != "" {
		cmd.Env = append(os.Environ(), "QTOOL_ORT_OPT_LEVEL="+level)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("onnxruntime: %v: %s", err, lastLines(string(b), 3))
	}
	out := map[string]*tensor.Tensor{}
	for _, name := range outNames {
		x, err := npy.ReadFile(filepath.Join(dir, FileName(name)))
		if err != nil {
			return nil, err
		}
		out[name] = x
	}
	return out, nil
}

func writeNpy(path string, x *tensor.Tensor) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := npy.Write(f, x); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}
