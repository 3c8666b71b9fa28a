package model

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/ortpeer"
	"github.com/qtool/qtool/internal/tensor"
)

// TestSavedModelsInORT re-saves the ONNX node tests and the shared models
// with Save and runs each original and its re-save in ONNX Runtime with the
// same inputs (the tests' own input_*.pb; a fixed pattern for the models):
// outputs must be bit-identical. This checks the writer against a peer that
// validates models independently of our loader. Models ONNX Runtime cannot
// run in their original form are counted, not failed.
func TestSavedModelsInORT(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	node, script := ortpeer.Need(t)
	ortDir := filepath.Join(filepath.Dir(script), "node_modules", "onnxruntime-node")
	s := sharedDir()
	if s == "" {
		t.Skip("../shared not found")
	}
	type job struct {
		Orig   string            `json:"orig"`
		Saved  string            `json:"saved"`
		Inputs map[string]string `json:"inputs"`
	}
	var jobs []job
	tmp := t.TempDir()
	dirs, _ := filepath.Glob(filepath.Join(s, "onnx-node", "test_*"))
	// Debian's libonnx-testdata, when installed: older opsets, so this also
	// checks Normalize's rewrites against the originals.
	for _, sub := range []string{"node", "pytorch-converted", "pytorch-operator", "simple"} {
		more, _ := filepath.Glob(filepath.Join("/usr/share/libonnx-testdata/data", sub, "test_*"))
		dirs = append(dirs, more...)
	}
	models, _ := filepath.Glob(filepath.Join(s, "models", "*", "*.onnx"))
	for i, f := range append(dirs, models...) {
		orig := f
		isNodeTest := !strings.HasSuffix(f, ".onnx")
		if isNodeTest {
			orig = filepath.Join(f, "model.onnx")
		}
		m, err := Load(orig)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		work := filepath.Join(tmp, strconv.Itoa(i))
		os.MkdirAll(work, 0o755)
		saved := filepath.Join(work, "model.onnx")
		if err := Save(m, saved); err != nil {
			t.Fatal(err)
		}
		j := job{Orig: orig, Saved: saved, Inputs: map[string]string{}}
		for k, in := range m.Graph.Inputs {
			var tt *tensor.Tensor
			if isNodeTest {
				tt, err = ReadTensorFile(filepath.Join(f, "test_data_set_0", "input_"+strconv.Itoa(k)+".pb"))
				if err != nil {
					break
				}
			} else {
				tt, err = pattern(in.DType, in.Shape)
				if err != nil {
					break
				}
			}
			file := filepath.Join(work, "in"+strconv.Itoa(k)+".npy")
			var buf bytes.Buffer
			if err = npy.Write(&buf, tt); err != nil {
				break
			}
			os.WriteFile(file, buf.Bytes(), 0o644)
			j.Inputs[in.Name] = file
		}
		if err != nil {
			continue // an input npy cannot hold (e.g. a string or optional input)
		}
		jobs = append(jobs, j)
	}
	jobFile := filepath.Join(tmp, "jobs.json")
	b, _ := json.Marshal(jobs)
	os.WriteFile(jobFile, b, 0o644)
	cmd := exec.Command(node, filepath.Join("testdata", "ort_compare.js"), ortDir, jobFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr // ORT logs the originals it refuses; noise unless we fail
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ort_compare.js: %v\n%s", err, stderr.String())
	}
	compared, skipped := 0, 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r struct {
			I          int    `json:"i"`
			OrigError  string `json:"orig_error"`
			SavedError string `json:"saved_error"`
			Mismatch   string `json:"mismatch"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad line %q", sc.Text())
		}
		name := jobs[r.I].Orig
		switch {
		case r.OrigError != "":
			skipped++
			t.Logf("not runnable in ONNX Runtime: %s: %.100s", name, r.OrigError)
		case r.SavedError != "":
			t.Errorf("%s: the original runs in ONNX Runtime, our re-save does not: %s", name, r.SavedError)
		case r.Mismatch != "":
			t.Errorf("%s: re-saved model gives different outputs: %s", name, r.Mismatch)
		default:
			compared++
		}
	}
	t.Logf("%d models bit-identical in ONNX Runtime after re-saving; %d not runnable there in their original form", compared, skipped)
	if compared < len(jobs)/2 {
		t.Errorf("only %d of %d compared", compared, len(jobs))
	}
}

// pattern makes a deterministic input for a declared type, symbolic dims
// set to 1.
func pattern(dt tensor.DType, s graph.Shape) (*tensor.Tensor, error) {
	dims := make(graph.Shape, len(s))
	for i, d := range s {
		dims[i] = d
		if !d.Known() {
			dims[i] = graph.Dim{Value: 1}
		}
	}
	shape, ok := dims.Ints()
	if !ok || s == nil {
		return nil, os.ErrInvalid
	}
	t, err := tensor.New(dt, shape)
	if err != nil {
		return nil, err
	}
	seed := uint32(12345)
	next := func() float32 {
		seed = seed*1103515245 + 12345
		return float32(seed>>8)/float32(1<<24)*2 - 1
	}
	switch d := t.Data.(type) {
	case []float32:
		for i := range d {
			d[i] = next()
		}
	case []int64:
	default:
		return nil, os.ErrInvalid
	}
	return t, nil
}
