package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

type goldenInfo struct {
	Nodes          int                 `json:"nodes"`
	Ops            map[string]int      `json:"ops"`
	Parameters     int64               `json:"parameters"`
	ParameterBytes int64               `json:"parameter_bytes"`
	Inputs         [][]json.RawMessage `json:"inputs"`
	Outputs        [][]json.RawMessage `json:"outputs"`
}

// TestInspectGolden compares Inspect with numbers the onnx Python package
// computed (testdata/inspect_golden.py).
func TestInspectGolden(t *testing.T) {
	s := sharedDir()
	if s == "" {
		t.Skip("../shared not found")
	}
	raw, err := os.ReadFile("testdata/inspect_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden map[string]goldenInfo
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	for rel, want := range golden {
		m, err := Load(filepath.Join(s, rel))
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		info := Inspect(m)
		if rel == "models/mnist-onnxzoo-cntk-2018/model.onnx" {
			// Normalize folded the two legacy-broadcast bias Constants into
			// initializers and turned both Reshape shape attributes into
			// int64[2] initializers.
			want.Nodes -= 2
			want.Ops["Constant"] -= 2
			want.Parameters += 4
			want.ParameterBytes += 32
		}
		if info.Nodes != want.Nodes || fmt.Sprint(info.Ops) != fmt.Sprint(want.Ops) {
			t.Errorf("%s: %d nodes %v, want %d %v", rel, info.Nodes, info.Ops, want.Nodes, want.Ops)
		}
		if info.Parameters != want.Parameters || info.ParameterBytes != want.ParameterBytes {
			t.Errorf("%s: %d parameters / %d bytes, want %d / %d", rel, info.Parameters, info.ParameterBytes, want.Parameters, want.ParameterBytes)
		}
		check := func(what string, got []ValueInfo, want [][]json.RawMessage) {
			if len(got) != len(want) {
				t.Errorf("%s: %d %s, want %d", rel, len(got), what, len(want))
				return
			}
			for i, w := range want {
				var name string
				json.Unmarshal(w[0], &name)
				shape, _ := json.Marshal(got[i].Shape)
				if got[i].Name != name || string(shape) != string(compact(w[1])) {
					t.Errorf("%s: %s %d is %s %s, want %s %s", rel, what, i, got[i].Name, shape, name, compact(w[1]))
				}
			}
		}
		check("inputs", info.Inputs, want.Inputs)
		check("outputs", info.Outputs, want.Outputs)
		if _, err := json.Marshal(info); err != nil {
			t.Errorf("%s: %v", rel, err)
		}
		if st, _ := os.Stat(filepath.Join(s, rel)); info.FileSize != st.Size() {
			t.Errorf("%s: file size %d, want %d", rel, info.FileSize, st.Size())
		}
	}
}

func compact(b json.RawMessage) []byte {
	var v any
	json.Unmarshal(b, &v)
	out, _ := json.Marshal(v)
	return out
}
