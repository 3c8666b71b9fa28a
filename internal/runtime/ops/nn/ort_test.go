package nn

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/tensor"
)

// ortScript finds tools/peers/ort.js with its npm package (onnxruntime-node)
// installed and node on the PATH, or skips t: ONNX Runtime is the reference
// these tests compare with, and without it they have nothing to check.
func ortScript(t testing.TB) (node, script string) {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "tools", "peers", "node_modules", "onnxruntime-node")); err == nil {
			script = filepath.Join(dir, "tools", "peers", "ort.js")
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("onnxruntime-node not installed (tools/peers)")
		}
		dir = parent
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found")
	}
	return node, script
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// runORT runs m in ONNX Runtime (tools/peers/ort.js) with the given inputs
// and returns every graph output.
func runORT(t testing.TB, m *model.Model, in map[string]*tensor.Tensor) map[string]*tensor.Tensor {
	t.Helper()
	node, script := ortScript(t)
	dir := t.TempDir()
	mp := filepath.Join(dir, "model.onnx")
	if err := model.Save(m, mp); err != nil {
		t.Fatal(err)
	}
	args := []string{script, "run", mp, dir}
	for name, x := range in {
		f := filepath.Join(dir, "in_"+unsafeName.ReplaceAllString(name, "_")+".npy")
		fh, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := npy.Write(fh, x); err != nil {
			t.Fatal(err)
		}
		if err := fh.Close(); err != nil {
			t.Fatal(err)
		}
		args = append(args, name+"="+f)
	}
	if b, err := exec.Command(node, args...).CombinedOutput(); err != nil {
		t.Fatalf("onnxruntime: %v\n%s", err, b)
	}
	out := map[string]*tensor.Tensor{}
	for _, v := range m.Graph.Outputs {
		x, err := npy.ReadFile(filepath.Join(dir, unsafeName.ReplaceAllString(v.Name, "_")+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		out[v.Name] = x
	}
	return out
}
