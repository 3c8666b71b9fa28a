package fuse

import (
	"math/rand"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// builder makes small float graphs: x [1,4,6,6] -> ... for the unsafe cases.
type builder struct {
	g   *graph.Graph
	nm  *graph.Namer
	rng *rand.Rand
	x   *graph.Value
}

func newBuilder() *builder {
	g := &graph.Graph{Name: "t", Opsets: map[string]int64{"": 13}}
	b := &builder{g: g, nm: g.NewNamer(), rng: rand.New(rand.NewSource(2))}
	b.x = &graph.Value{Name: "x", DType: tensor.Float32, Shape: graph.KnownShape(1, 4, 6, 6)}
	g.Inputs = append(g.Inputs, b.x)
	return b
}

func (b *builder) rand(shape ...int) *tensor.Tensor {
	t := tensor.MustNew(tensor.Float32, shape)
	for i := range t.F32() {
		t.F32()[i] = float32(b.rng.NormFloat64())
	}
	return t
}

func (b *builder) positive(n int) *tensor.Tensor {
	t := tensor.MustNew(tensor.Float32, []int{n})
	for i := range t.F32() {
		t.F32()[i] = 0.5 + b.rng.Float32()
	}
	return t
}

func (b *builder) konst(t *tensor.Tensor) *graph.Value { return b.g.AddInitializer(b.nm, "c", t) }

func (b *builder) node(op string, in []*graph.Value, attrs ...*graph.Attribute) *graph.Value {
	n := b.nm.NewNode(op, op, in, 1, attrs...)
	b.g.Nodes = append(b.g.Nodes, n)
	n.Outputs[0].DType = tensor.Float32
	return n.Outputs[0]
}

func (b *builder) conv(x, w *graph.Value) *graph.Value {
	return b.node("Conv", []*graph.Value{x, w}, graph.IntsAttr("pads", []int64{1, 1, 1, 1}))
}

func (b *builder) bn(x *graph.Value, scale *graph.Value) *graph.Value {
	return b.node("BatchNormalization", []*graph.Value{x, scale, b.konst(b.rand(4)), b.konst(b.rand(4)), b.konst(b.positive(4))})
}

func (b *builder) output(vs ...*graph.Value) { b.g.Outputs = append(b.g.Outputs, vs...) }

// checkUnsafe fuses a copy of the graph and checks that the given op count
// is unchanged, that the log says why, and that outputs are unchanged.
func checkUnsafe(t *testing.T, b *builder, op string, want int, reason string) {
	t.Helper()
	feeds := map[string]*tensor.Tensor{}
	for _, in := range b.g.Inputs {
		dims, _ := in.Shape.Ints()
		feeds[in.Name] = b.rand(dims...)
	}
	before := run(t, b.g, feeds)
	var log []string
	if _, err := Fuse(b.g, Options{Log: func(s string) { log = append(log, s) }}); err != nil {
		t.Fatal(err)
	}
	if got := opCounts(b.g)[op]; got != want {
		t.Errorf("%d %s after fusing, want %d", got, op, want)
	}
	if !strings.Contains(strings.Join(log, "\n"), reason) {
		t.Errorf("log %q does not say %q", log, reason)
	}
	after := run(t, b.g, feeds)
	for name, w := range before {
		if err := closeEnough(after[name], w); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestUnsafeConvOutputWithSecondConsumer(t *testing.T) {
	b := newBuilder()
	c := b.conv(b.x, b.konst(b.rand(4, 4, 3, 3)))
	b.output(b.bn(c, b.konst(b.positive(4))), b.node("Sigmoid", []*graph.Value{c}))
	checkUnsafe(t, b, "BatchNormalization", 1, "another consumer")
}

func TestUnsafeSharedWeight(t *testing.T) {
	b := newBuilder()
	w := b.konst(b.rand(4, 4, 3, 3))
	b.output(b.bn(b.conv(b.x, w), b.konst(b.positive(4))), b.conv(b.x, w))
	checkUnsafe(t, b, "BatchNormalization", 1, "shared")
}

func TestUnsafeNonConstantBNParameter(t *testing.T) {
	b := newBuilder()
	scale := &graph.Value{Name: "scale", DType: tensor.Float32, Shape: graph.KnownShape(4)}
	b.g.Inputs = append(b.g.Inputs, scale)
	b.output(b.bn(b.conv(b.x, b.konst(b.rand(4, 4, 3, 3))), scale))
	checkUnsafe(t, b, "BatchNormalization", 1, "not a constant")
}

func TestUnsafeReluInputUsedElsewhere(t *testing.T) {
	b := newBuilder()
	c := b.conv(b.x, b.konst(b.rand(4, 4, 3, 3)))
	b.output(b.node("Relu", []*graph.Value{c}), c)
	checkUnsafe(t, b, "Relu", 1, "another consumer")
}

func TestUnsafeTrainingModeBN(t *testing.T) {
	b := newBuilder()
	y := b.bn(b.conv(b.x, b.konst(b.rand(4, 4, 3, 3))), b.konst(b.positive(4)))
	b.g.Nodes[len(b.g.Nodes)-1].SetAttr(graph.IntAttr("training_mode", 1))
	b.output(y)
	var log []string
	if _, err := Fuse(b.g, Options{Log: func(s string) { log = append(log, s) }}); err != nil {
		t.Fatal(err)
	}
	if opCounts(b.g)["BatchNormalization"] != 1 || !strings.Contains(strings.Join(log, " "), "training_mode") {
		t.Fatalf("training-mode BN folded: %v %v", opCounts(b.g), log)
	}
}

// Safe counterparts fuse, so the unsafe tests above fail for the right reason.
func TestSafeCasesFuse(t *testing.T) {
	b := newBuilder()
	c := b.conv(b.x, b.konst(b.rand(4, 4, 3, 3)))
	y := b.node("Relu", []*graph.Value{b.bn(c, b.konst(b.positive(4)))})
	m := b.node("Mul", []*graph.Value{b.conv(y, b.konst(b.rand(4, 4, 3, 3))), b.konst(b.rand(1, 4, 1, 1))})
	b.output(b.node("Add", []*graph.Value{m, b.konst(b.rand(4, 1, 1))}))
	feeds := map[string]*tensor.Tensor{"x": b.rand(1, 4, 6, 6)}
	before := run(t, b.g, feeds)
	rep, err := Fuse(b.g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c2 := opCounts(b.g)
	if c2["BatchNormalization"] != 0 || c2["Relu"] != 0 || c2["Mul"] != 0 || c2["Add"] != 0 {
		t.Fatalf("not fused: %v (%v)", c2, rep.Counts)
	}
	after := run(t, b.g, feeds)
	for name, w := range before {
		if err := closeEnough(after[name], w); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
