package model

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Save refuses, without writing anything, a model over protobuf's message
// limit (lowered here to the test model's size; a real 2 GiB model is too
// much for a unit test).
func TestSaveRefusesOverProtobufLimit(t *testing.T) {
	m, err := Load(filepath.Join("..", "..", "examples", "mnist", "mnist-8.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	defer func(v int64) { maxProtoBytes = v }(maxProtoBytes)
	dir := t.TempDir()
	p := filepath.Join(dir, "big.onnx")
	maxProtoBytes = int64(len(data)) - 1
	err = Save(m, p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "2 GiB limit") {
		t.Fatalf("over the limit: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a refused Save left %v", ents[0].Name())
	}
	maxProtoBytes = int64(len(data))
	if err := Save(m, p); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	if got, _ := os.ReadFile(p); string(got) != string(data) {
		t.Fatal("Save and Marshal disagree")
	}
}
