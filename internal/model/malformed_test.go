package model

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/qtool/qtool/internal/model/malformed"
	"github.com/qtool/qtool/internal/model/onnxpb"
)

func baseModel() *onnxpb.ModelProto { return malformed.BaseModel() }

func external(loc string, kv ...string) *onnxpb.TensorProto { return malformed.External(loc, kv...) }

func marshal(t *testing.T, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBaseModelLoads(t *testing.T) {
	m, err := LoadBytes(marshal(t, baseModel()), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Graph.Nodes) != 2 || m.Graph.Outputs[0].Shape.String() != "[1,2]" {
		t.Fatalf("unexpected graph: %d nodes, output %v", len(m.Graph.Nodes), m.Graph.Outputs[0].Shape)
	}
}

func TestMalformed(t *testing.T) {
	// dir is the model folder; secret.bin sits outside it, reachable only
	// through the link.bin symlink that the loader must refuse to follow.
	root := t.TempDir()
	dir := filepath.Join(root, "model")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "secret.bin"), make([]byte, 16), 0o644)
	if err := malformed.SupportFiles(dir, filepath.Join(root, "secret.bin")); err != nil {
		t.Fatal(err)
	}
	cases := malformed.Cases()
	if len(cases) < 20 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			path := filepath.Join(dir, "bad.onnx")
			if err := os.WriteFile(path, c.Data(), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil {
				t.Fatalf("loaded without error; want %q", c.Want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, path+": ") {
				t.Errorf("error does not start with the file name: %s", msg)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			if !strings.Contains(msg, c.Want) {
				t.Errorf("error %q does not contain %q", msg, c.Want)
			}
		})
	}
}

func TestExternalDataInside(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	buf := make([]byte, 8+16)
	for i, b := range []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40} {
		buf[8+i] = b // 1, 2, 3, 4 as little-endian float32 after 8 bytes of padding
	}
	os.WriteFile(filepath.Join(dir, "data", "w.bin"), buf, 0o644)
	m := baseModel()
	m.Graph.Initializer[0] = external("data/../data/w.bin", "offset", "8", "length", "16", "checksum", "ignored")
	path := filepath.Join(dir, "m.onnx")
	os.WriteFile(path, marshal(t, m), 0o644)
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	w := got.Graph.Initializers[0].Const.F32()
	if len(w) != 4 || w[0] != 1 || w[3] != 4 {
		t.Fatalf("external weights %v", w)
	}
	if len(got.ExternalFiles) != 1 || got.ExternalFiles[0] != "data/../data/w.bin" {
		t.Errorf("ExternalFiles %v", got.ExternalFiles)
	}
	// Without a folder, LoadBytes must refuse external data.
	if _, err := LoadBytes(marshal(t, m), ""); err == nil || !strings.Contains(err.Error(), "no model folder") {
		t.Errorf("LoadBytes without dir: %v", err)
	}
}

// TestMalformedCorpus loads the committed corpus (testdata/malformed, made
// by tools/malformed) so that the files the command-line tests use are
// known to fail as their manifest says, and are in step with the cases.
func TestMalformedCorpus(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "testdata", "malformed")
	raw, err := os.ReadFile(filepath.Join(dir, "MANIFEST.tsv"))
	if err != nil {
		t.Skipf("no corpus: %v", err)
	}
	n := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, want, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("bad manifest line %q", line)
		}
		n++
		_, err := Load(filepath.Join(dir, name))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", name, err, want)
		}
	}
	if n != len(malformed.Cases()) {
		t.Errorf("corpus has %d files, there are %d cases: rerun go run ./tools/malformed", n, len(malformed.Cases()))
	}
}

func TestMarshalRefusesUnimportedDomain(t *testing.T) {
	m, err := LoadBytes(marshal(t, baseModel()), "")
	if err != nil {
		t.Fatal(err)
	}
	m.Graph.Nodes[1].Domain = "com.microsoft" // as a careless pass would
	if _, err := Marshal(m); err == nil || !strings.Contains(err.Error(), `imports no opset for it (set Graph.Opsets["com.microsoft"])`) {
		t.Fatalf("Marshal: %v", err)
	}
	m.Graph.Opsets["com.microsoft"] = 1
	data, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := LoadBytes(data, "")
	if err != nil || back.Graph.Opsets["com.microsoft"] != 1 {
		t.Fatalf("reload: %v %v", err, back.Graph.Opsets)
	}
}
