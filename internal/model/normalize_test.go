package model

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/ortpeer"
)

// repoRoot walks up to the folder holding go.mod.
func repoRoot(t *testing.T) string {
	d, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		p := filepath.Dir(d)
		if p == d {
			t.Fatal("go.mod not found")
		}
		d = p
	}
}

// TestNormalizeOpset1MNIST loads the 2018 opset-1 MNIST model (legacy
// broadcast attributes, Reshape with a shape attribute), checks the
// rewrite, saves it, and runs the saved model in ONNX Runtime (which does
// not accept opset 1) on the model's own test data: the outputs must match
// the reference outputs shipped with the model.
func TestNormalizeOpset1MNIST(t *testing.T) {
	s := sharedDir()
	if s == "" {
		t.Skip("../shared not found")
	}
	dir := filepath.Join(s, "models", "mnist-onnxzoo-cntk-2018")
	m, err := Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph
	if g.Opsets[""] != graph.NormalizedOpset || m.FileOpsets[0].Version != 1 || m.IRVersion != 4 || m.FileIRVersion != 3 {
		t.Fatalf("opsets %v (file %v), IR %d (file %d)", g.Opsets, m.FileOpsets, m.IRVersion, m.FileIRVersion)
	}
	for _, n := range g.Nodes {
		for _, a := range []string{"broadcast", "axis", "shape", "consumed_inputs"} {
			if n.Attr(a) != nil && n.OpType != "Concat" {
				t.Errorf("%v still has attribute %q", n, a)
			}
		}
		if n.OpType == "Add" {
			b := graph.ConstValue(g.Index(), n.Input(1))
			if b == nil {
				t.Errorf("%v: bias is no longer a constant", n)
			} else if n.Input(0).Shape != nil && len(n.Input(0).Shape) == 4 && len(b.Shape) != 3 {
				t.Errorf("%v: bias shape %v, want [C,1,1]", n, b.Shape)
			}
		}
		if n.OpType == "Reshape" && len(n.Inputs) != 2 {
			t.Errorf("%v: %d inputs", n, len(n.Inputs))
		}
	}
	if out := g.Outputs[0]; out.Shape.String() != "[1,10]" {
		t.Errorf("inferred output shape %v", out.Shape)
	}

	node, ortJS := ortpeer.Need(t)
	tmp := t.TempDir()
	saved := filepath.Join(tmp, "model.onnx")
	if err := Save(m, saved); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		ar, err := npy.ReadNPZFile(filepath.Join(dir, "test_data_"+string(rune('0'+i))+".npz"))
		if err != nil {
			t.Fatal(err)
		}
		in, want := ar.Arrays["inputs"], ar.Arrays["outputs"]
		in.Shape = []int{1, 1, 28, 28}
		inFile := filepath.Join(tmp, "in.npy")
		f, err := os.Create(inFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := npy.Write(f, in); err != nil {
			t.Fatal(err)
		}
		f.Close()
		outDir := filepath.Join(tmp, "out")
		os.MkdirAll(outDir, 0o755)
		cmd := exec.Command(node, ortJS, "run", saved, outDir, "Input3="+inFile)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("onnx runtime: %v\n%s", err, out)
		}
		got, err := npy.ReadFile(filepath.Join(outDir, g.Outputs[0].Name+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		gf, wf := got.F32(), want.F32()
		if len(gf) != len(wf) {
			t.Fatalf("output has %d values, want %d", len(gf), len(wf))
		}
		for j := range wf {
			if math.Abs(float64(gf[j]-wf[j])) > 1e-4*(1+math.Abs(float64(wf[j]))) {
				t.Errorf("set %d: output[%d] = %v, reference %v", i, j, gf[j], wf[j])
			}
		}
	}
}

// TestNormalizeOpset8 checks that mnist-8 is raised to opset 9 without
// any rewrite (its ops did not change form between 8 and 9).
func TestNormalizeOpset8(t *testing.T) {
	s := sharedDir()
	if s == "" {
		t.Skip("../shared not found")
	}
	path := filepath.Join(s, "models", "mnist-8", "mnist-8.onnx")
	m, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Graph.Opsets[""] != 9 || m.FileOpsets[0].Version != 8 {
		t.Fatalf("opsets %v, file %v", m.Graph.Opsets, m.FileOpsets)
	}
	if len(m.Graph.Nodes) != 12 {
		t.Errorf("%d nodes, want the file's 12", len(m.Graph.Nodes))
	}
	if out := m.Graph.Outputs[0]; out.Shape.String() != "[1,10]" {
		t.Errorf("output shape %v", out.Shape)
	}
}

func TestLegacyBroadcastAxis(t *testing.T) {
	b, err := Marshal(&Model{}) // a nil graph must be refused, not panic
	if err == nil || b != nil {
		t.Fatalf("Marshal of an empty model: %v", err)
	}
	data, _ := protoMarshal(legacyModel())
	m, err := LoadBytes(data, "")
	if err != nil {
		t.Fatal(err)
	}
	var add *graph.Node
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Add" {
			add = n
		}
	}
	if add == nil || add.Attr("broadcast") != nil || add.Attr("axis") != nil {
		t.Fatalf("Add not rewritten: %+v", add)
	}
	if c := add.Input(1).Const; c == nil || len(c.Shape) != 2 || c.Shape[0] != 2 || c.Shape[1] != 1 {
		t.Fatalf("B should be a [2,1] constant, got %v", add.Input(1).Const)
	}
	if s := m.Graph.Outputs[0].Shape.String(); s != "[1,2,1]" {
		t.Errorf("output shape %s", s)
	}
}
