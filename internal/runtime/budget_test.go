package runtime

import (
	"errors"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// A kernel asking Context.New for more than the session's budget gets a
// BudgetError naming the node and both sizes, and nothing is allocated.
func TestMaxTensorBytes(t *testing.T) {
	x := f32Value("x", graph.Dim{Value: 2}, graph.Dim{Value: 1024})
	y := &graph.Value{Name: "y"}
	n := node("NewAddOne", []*graph.Value{x}, y)
	n.Name = "big"
	g := &graph.Graph{Inputs: []*graph.Value{x}, Nodes: []*graph.Node{n}, Outputs: []*graph.Value{y}, Opsets: map[string]int64{"": 17, testDomain: 1}}
	in := map[string]*tensor.Tensor{"x": tensor.FromFloat32([]int{2, 1024}, fill(2048, 0))}

	// 2×1024 float32 = 8 KiB: fits 8192 bytes exactly, not 8191.
	for _, c := range []struct {
		limit int64
		ok    bool
	}{{8192, true}, {8191, false}, {-1, true}, {0, true}} {
		s, err := NewSession(g, Options{MaxTensorBytes: c.limit})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Run(in)
		if c.ok != (err == nil) {
			t.Fatalf("limit %d: err %v, want ok=%v", c.limit, err, c.ok)
		}
		if err == nil {
			continue
		}
		var be *BudgetError
		if !errors.As(err, &be) || be.Bytes != 8192 || be.Limit != 8191 {
			t.Fatalf("limit %d: %v, want a BudgetError of 8192 bytes over 8191", c.limit, err)
		}
		for _, w := range []string{"big", "[2 1024]", "8192 bytes", "memory", "--max-tensor-mb"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not say %q", err, w)
			}
		}
	}
}

// Outside a session (nil Context, plan-time folding) the process-wide
// default applies, so a constant-fed generator cannot allocate 8 GiB at
// plan time either.
func TestCheckAllocDefault(t *testing.T) {
	var c *Context
	if err := c.CheckAlloc(tensor.Float32, []int{65536, 32768}); err == nil {
		t.Fatal("8 GiB passed the default budget")
	}
	if err := c.CheckAlloc(tensor.Float32, []int{64, 64, 112, 112}); err != nil {
		t.Fatalf("ResNet-18's stem output at batch 64: %v", err)
	}
	if _, err := c.New(tensor.Float32, []int{65536, 32768}); err == nil {
		t.Fatal("New allocated 8 GiB")
	}
	defer SetMaxTensorBytes(MaxTensorBytes())
	SetMaxTensorBytes(1 << 20)
	if err := c.CheckAlloc(tensor.Uint8, []int{1<<20 + 1}); err == nil {
		t.Fatal("SetMaxTensorBytes did not lower the default")
	}
	SetMaxTensorBytes(0)
	if err := c.CheckAlloc(tensor.Float32, []int{65536, 32768}); err != nil {
		t.Fatalf("no limit: %v", err)
	}
	if err := c.CheckAlloc(tensor.Float32, []int{-1}); err == nil {
		t.Fatal("negative dim accepted")
	}
}
