package model

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/graph"
)

// sharedDir finds ../shared (the team's models and ONNX tests) by walking up
// from the test's folder; "" when absent.
func sharedDir() string {
	d, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if st, err := os.Stat(filepath.Join(d, "shared", "onnx-node")); err == nil && st.IsDir() {
			return filepath.Join(d, "shared")
		}
		p := filepath.Dir(d)
		if p == d {
			return ""
		}
		d = p
	}
}

// corpus lists every model the round-trip test walks.
func corpus(t *testing.T) []string {
	var files []string
	add := func(root string, match func(string) bool) {
		if _, err := os.Stat(root); err != nil {
			return
		}
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && match(p) {
				files = append(files, p)
			}
			return nil
		})
	}
	isModel := func(p string) bool { return filepath.Base(p) == "model.onnx" }
	if s := sharedDir(); s != "" {
		add(filepath.Join(s, "onnx-node"), isModel)
		add(filepath.Join(s, "models"), func(p string) bool { return strings.HasSuffix(p, ".onnx") })
	} else {
		t.Log("../shared not found: skipping the shared models")
	}
	for _, sub := range []string{"node", "pytorch-converted", "pytorch-operator", "simple", "real"} {
		add(filepath.Join("/usr/share/libonnx-testdata/data", sub), isModel)
	}
	return files
}

func TestRoundTripCorpus(t *testing.T) {
	files := corpus(t)
	if len(files) == 0 {
		t.Skip("no models found")
	}
	for _, f := range files {
		m, err := Load(f)
		if err != nil {
			t.Errorf("load: %v", err)
			continue
		}
		data, err := Marshal(m)
		if err != nil {
			t.Errorf("%s: marshal: %v", f, err)
			continue
		}
		m2, err := LoadBytes(data, filepath.Dir(f))
		if err != nil {
			t.Errorf("%s: reload: %v", f, err)
			continue
		}
		if err := graph.Equal(m.Graph, m2.Graph); err != nil {
			t.Errorf("%s: round trip: %v", f, err)
		}
		if m.IRVersion != m2.IRVersion || m.ProducerName != m2.ProducerName || m.DocString != m2.DocString ||
			len(m.Metadata) != len(m2.Metadata) || len(m.Functions) != len(m2.Functions) {
			t.Errorf("%s: model fields differ after round trip", f)
		}
	}
	t.Logf("%d models round-tripped", len(files))
}

func TestReadTensorFiles(t *testing.T) {
	s := sharedDir()
	if s == "" {
		t.Skip("../shared not found")
	}
	files, _ := filepath.Glob(filepath.Join(s, "onnx-node", "*", "test_data_set_*", "*.pb"))
	if len(files) == 0 {
		t.Skip("no .pb files")
	}
	for _, f := range files {
		tt, err := ReadTensorFile(f)
		if err != nil {
			// The Q/DQ tests include dtypes qtool does not hold (int4,
			// float8, ...): those must be refused by name, never misread.
			if strings.Contains(err.Error(), "unsupported dtype") {
				continue
			}
			t.Errorf("%v", err)
			continue
		}
		if err := tt.Validate(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		tp, err := TensorToProto("x", tt)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		back, err := TensorFromProto(tp, "")
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if !graph.TensorsIdentical(tt, back) {
			t.Errorf("%s: tensor changed in a round trip", f)
		}
	}
}
