package qdq

import (
	"path/filepath"
	"testing"

	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/runtime/nodetest"
)

// TestNodeTestsAfterRewrite runs Rewrite over every ONNX backend node-test
// model (all ops, all the odd forms the suite has): it must never fail or
// panic, and where it changed the graph (constants folded, casts dropped,
// patterns fused) the rewritten model must still give the expected outputs.
func TestNodeTestsAfterRewrite(t *testing.T) {
	dirs := nodetest.Dirs("test_*")
	if len(dirs) == 0 {
		t.Skip("no ONNX node tests found")
	}
	changed := 0
	for _, dir := range dirs {
		m, err := model.Load(filepath.Join(dir, "model.onnx"))
		if err != nil {
			continue // the loader's own tests cover these
		}
		rep, err := Rewrite(m.Graph)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(dir), err)
			continue
		}
		if rep.Total() == 0 && len(rep.Passthrough) == 0 && rep.Constants == 0 && rep.Casts == 0 {
			continue
		}
		sess, err := runtime.NewSession(m.Graph, runtime.Options{Threads: 1})
		if err != nil {
			// Fine only when the plain model does not plan either (ops
			// without kernels, listed in ops/all/unsupported.txt).
			if plain, lerr := model.Load(filepath.Join(dir, "model.onnx")); lerr == nil {
				if _, perr := runtime.NewSession(plain.Graph, runtime.Options{Threads: 1}); perr == nil {
					t.Errorf("%s: plans before the rewrite, not after: %v", filepath.Base(dir), err)
				}
			}
			continue
		}
		changed++
		if err := nodetest.CheckSession(sess, dir); err != nil {
			t.Errorf("%s after rewrite (%v): %v", filepath.Base(dir), rep, err)
		}
	}
	t.Logf("%d node-test models, %d changed by the rewrite and re-checked", len(dirs), changed)
}
