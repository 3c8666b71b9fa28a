// Package nodetest runs ONNX backend node-test folders (model.onnx plus
// test_data_set_*/input_*.pb and output_*.pb) through a runtime Session and
// compares the outputs with the expected ones at the ONNX runner's
// tolerance. Any package's tests can use it; the kernels under test must be
// registered (import their package or internal/runtime/ops/all).
package nodetest

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// Tolerances of onnx/backend/test/runner: |got - want| <= ATol + RTol·|want|
// for floats; integers and bools must be equal.
const (
	RTol = 1e-3
	ATol = 1e-7
)

// LibONNXNodeDir is where Debian's libonnx-testdata installs its node tests.
const LibONNXNodeDir = "/usr/share/libonnx-testdata/data/node"

// Run runs one node-test folder with two threads and fails t on any error.
func Run(t testing.TB, dir string) {
	t.Helper()
	if err := Check(dir, 2); err != nil {
		t.Fatalf("%s: %v", filepath.Base(dir), err)
	}
}

// Check runs one node-test folder with the given thread count and returns
// the first problem: a model that does not load or plan, a run error, or
// an output that differs from the expected one.
func Check(dir string, threads int) error {
	m, err := model.Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return err
	}
	sess, err := runtime.NewSession(m.Graph, runtime.Options{Threads: threads})
	if err != nil {
		return err
	}
	return CheckSession(sess, dir)
}

// CheckSession runs sess on every test_data_set_* of a node-test folder
// and returns the first problem: no data set, a run error, or an output
// that differs from the expected one.
func CheckSession(sess *runtime.Session, dir string) error {
	sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	if len(sets) == 0 {
		return fmt.Errorf("no test_data_set_* folder")
	}
	sort.Strings(sets)
	for _, set := range sets {
		inputs, err := ReadInputs(set, sess.InputNames())
		if err != nil {
			return err
		}
		got, err := sess.Run(inputs)
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(set), err)
		}
		for i, name := range sess.OutputNames() {
			want, err := ReadOutput(set, i)
			if err != nil {
				return err
			}
			if err := Compare(got[name], want); err != nil {
				return fmt.Errorf("%s: output %q: %v", filepath.Base(set), name, err)
			}
		}
	}
	return nil
}

// ReadInputs reads a data set's input_<i>.pb as the inputs named names[i];
// an input the set leaves out (an optional graph input) is left out.
func ReadInputs(set string, names []string) (map[string]*tensor.Tensor, error) {
	inputs := map[string]*tensor.Tensor{}
	for i, name := range names {
		p := filepath.Join(set, fmt.Sprintf("input_%d.pb", i))
		if _, err := os.Stat(p); err != nil {
			continue
		}
		t, err := model.ReadTensorFile(p)
		if err != nil {
			return nil, err
		}
		inputs[name] = t
	}
	return inputs, nil
}

// ReadOutput reads a data set's expected output i.
func ReadOutput(set string, i int) (*tensor.Tensor, error) {
	return model.ReadTensorFile(filepath.Join(set, fmt.Sprintf("output_%d.pb", i)))
}

// Compare checks dtype, shape and values: floats within RTol/ATol (NaN
// matches NaN, infinities must be equal), everything else exactly.
func Compare(got, want *tensor.Tensor) error {
	if got == nil {
		return fmt.Errorf("not produced")
	}
	if got.DType != want.DType {
		return fmt.Errorf("dtype %v, want %v", got.DType, want.DType)
	}
	if !tensor.SameShape(got.Shape, want.Shape) {
		return fmt.Errorf("shape %v, want %v", got.Shape, want.Shape)
	}
	if got.DType == tensor.String {
		g, w := got.Strings(), want.Strings()
		for i := range w {
			if g[i] != w[i] {
				return fmt.Errorf("[%d] = %q, want %q", i, g[i], w[i])
			}
		}
		return nil
	}
	if g, ok := got.Data.([]int64); ok {
		// Exact, without the float64 detour that rounds above 2^53.
		w := want.I64()
		for i := range w {
			if g[i] != w[i] {
				return fmt.Errorf("[%d] = %d, want %d", i, g[i], w[i])
			}
		}
		return nil
	}
	if g, ok := got.Data.([]uint64); ok {
		w := want.U64()
		for i := range w {
			if g[i] != w[i] {
				return fmt.Errorf("[%d] = %d, want %d", i, g[i], w[i])
			}
		}
		return nil
	}
	g, err := got.AsFloat64()
	if err != nil {
		return err
	}
	w, err := want.AsFloat64()
	if err != nil {
		return err
	}
	if len(g) != len(w) {
		return fmt.Errorf("%d values, want %d", len(g), len(w))
	}
	exact := !got.DType.IsFloat()
	bad, first := 0, ""
	for i := range w {
		ok := g[i] == w[i] || (math.IsNaN(g[i]) && math.IsNaN(w[i]))
		if !ok && !exact && !math.IsInf(w[i], 0) && !math.IsNaN(w[i]) {
			ok = math.Abs(g[i]-w[i]) <= ATol+RTol*math.Abs(w[i])
		}
		if !ok {
			if bad == 0 {
				first = fmt.Sprintf("[%d] = %g, want %g", i, g[i], w[i])
			}
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d values differ, first %s", bad, len(w), first)
	}
	return nil
}

// SharedDir finds the team's shared/onnx-node folder by walking up from the
// working directory ("" when not found).
func SharedDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; {
		p := filepath.Join(d, "shared", "onnx-node")
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
		up := filepath.Dir(d)
		if up == d {
			return ""
		}
		d = up
	}
}

// Dirs lists the node-test folders whose name matches the glob pattern
// (e.g. "test_relu*") under shared/onnx-node and, when installed,
// LibONNXNodeDir. Both suites have tests of the same name; both are listed.
func Dirs(pattern string) []string {
	var out []string
	for _, root := range []string{SharedDir(), LibONNXNodeDir} {
		out = append(out, DirsIn(root, pattern)...)
	}
	return out
}

// DirsIn lists matching node-test folders (those holding a model.onnx)
// under one root, sorted.
func DirsIn(root, pattern string) []string {
	if root == "" {
		return nil
	}
	m, _ := filepath.Glob(filepath.Join(root, pattern))
	var out []string
	for _, d := range m {
		if _, err := os.Stat(filepath.Join(d, "model.onnx")); err == nil {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

// ReadList reads an unsupported-tests file: one "test_name: reason" per
// line, '#' comments and blank lines ignored.
func ReadList(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, reason, ok := strings.Cut(line, ":")
		name, reason = strings.TrimSpace(name), strings.TrimSpace(reason)
		if !ok || name == "" || reason == "" {
			return nil, fmt.Errorf("%s:%d: want \"test_name: reason\", got %q", path, i+1, line)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s:%d: %s listed twice", path, i+1, name)
		}
		out[name] = reason
	}
	return out, nil
}
