package graph

import (
	"errors"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/tensor"
)

// chain builds x -> op0 -> op1 -> ... with fresh values.
func chain(ops ...string) (*Graph, []*Node) {
	g := &Graph{Opsets: map[string]int64{"": 17}}
	x := &Value{Name: "x", DType: tensor.Float32, Shape: KnownShape(1, 3, 8, 8)}
	g.Inputs = []*Value{x}
	cur := x
	var nodes []*Node
	for i, op := range ops {
		out := &Value{Name: op + "_out" + string(rune('0'+i))}
		n := &Node{Name: op + string(rune('0'+i)), OpType: op, Inputs: []*Value{cur}, Outputs: []*Value{out}}
		nodes = append(nodes, n)
		cur = out
	}
	g.Nodes = nodes
	g.Outputs = []*Value{cur}
	return g, nodes
}

func names(ns []*Node) string {
	var s []string
	for _, n := range ns {
		s = append(s, n.Name)
	}
	return strings.Join(s, ",")
}

func TestSortStable(t *testing.T) {
	// Two independent branches a1->a2 and b1, listed out of order:
	// a2 before a1. The sort must move a2 after a1 and otherwise keep the
	// file order (b1 stays first).
	x := &Value{Name: "x"}
	a1o, a2o, b1o := &Value{Name: "a1o"}, &Value{Name: "a2o"}, &Value{Name: "b1o"}
	a1 := &Node{Name: "a1", OpType: "Relu", Inputs: []*Value{x}, Outputs: []*Value{a1o}}
	a2 := &Node{Name: "a2", OpType: "Relu", Inputs: []*Value{a1o}, Outputs: []*Value{a2o}}
	b1 := &Node{Name: "b1", OpType: "Relu", Inputs: []*Value{x}, Outputs: []*Value{b1o}}
	g := &Graph{Inputs: []*Value{x}, Nodes: []*Node{b1, a2, a1}, Outputs: []*Value{a2o, b1o}}
	if err := g.Sort(); err != nil {
		t.Fatal(err)
	}
	if got := names(g.Nodes); got != "b1,a1,a2" {
		t.Fatalf("order %s, want b1,a1,a2", got)
	}
	// Sorting a sorted graph changes nothing.
	g.Nodes = []*Node{a1, b1, a2}
	if err := g.Sort(); err != nil || names(g.Nodes) != "a1,b1,a2" {
		t.Fatalf("sorted graph reordered: %s %v", names(g.Nodes), err)
	}
}

func TestSortCycle(t *testing.T) {
	g, ns := chain("Relu", "Sigmoid", "Tanh")
	ns[0].Inputs[0] = ns[2].Outputs[0] // Relu reads Tanh's output
	err := g.Sort()
	var ce *CycleError
	if !errors.As(err, &ce) {
		t.Fatalf("want a CycleError, got %v", err)
	}
	if !strings.Contains(err.Error(), "cycle through node") || ce.Count != 3 {
		t.Errorf("error %v (count %d)", err, ce.Count)
	}
}

func TestSortSubgraphDependency(t *testing.T) {
	// An If whose branch reads "v" must come after v's producer even
	// though v is not a direct input.
	x := &Value{Name: "x"}
	v := &Value{Name: "v"}
	o := &Value{Name: "o"}
	prod := &Node{Name: "p", OpType: "Relu", Inputs: []*Value{x}, Outputs: []*Value{v}}
	bo := &Value{Name: "bo"}
	body := &Graph{Nodes: []*Node{{OpType: "Identity", Inputs: []*Value{v}, Outputs: []*Value{bo}}}, Outputs: []*Value{bo}}
	ifn := &Node{Name: "if", OpType: "If", Inputs: []*Value{x}, Outputs: []*Value{o},
		Attrs: []*Attribute{{Name: "then_branch", Type: AttrGraph, G: body}, {Name: "else_branch", Type: AttrGraph, G: body}}}
	g := &Graph{Inputs: []*Value{x}, Nodes: []*Node{ifn, prod}, Outputs: []*Value{o}}
	if err := g.Sort(); err != nil {
		t.Fatal(err)
	}
	if names(g.Nodes) != "p,if" {
		t.Fatalf("order %s", names(g.Nodes))
	}
	if ov := body.OuterValues(); len(ov) != 1 || ov[0] != v {
		t.Errorf("outer values %v", ov)
	}
	ix := g.Index()
	if c := ix.Consumers[v]; len(c) != 1 || c[0] != ifn {
		t.Errorf("consumers of v: %v", c)
	}
}

func TestEditHelpers(t *testing.T) {
	g, ns := chain("Conv", "BatchNormalization", "Relu")
	ix := g.Index()
	if ix.Producer[ns[1].Outputs[0]] != ns[1] || !ix.SingleUse(ns[0].Outputs[0]) || ix.SingleUse(ns[2].Outputs[0]) {
		t.Fatal("index wrong")
	}
	// Bypass the BatchNormalization.
	g.ReplaceAllUses(ns[1].Outputs[0], ns[0].Outputs[0])
	if !g.RemoveNode(ns[1]) || g.RemoveNode(ns[1]) {
		t.Fatal("RemoveNode")
	}
	if names(g.Nodes) != "Conv0,Relu2" || ns[2].Inputs[0] != ns[0].Outputs[0] {
		t.Fatalf("after bypass: %s", names(g.Nodes))
	}
	nm := g.NewNamer()
	if a, b := nm.Name("Conv0"), nm.Name("Conv0"); a != "Conv0_1" || b != "Conv0_2" {
		t.Errorf("names %s %s", a, b)
	}
	id := nm.NewNode("Identity", "id", []*Value{ns[0].Outputs[0]}, 1)
	g.InsertNodeAfter(ns[0], id)
	ns[2].Inputs[0] = id.Outputs[0]
	if names(g.Nodes) != "Conv0,id,Relu2" {
		t.Fatalf("after insert: %s", names(g.Nodes))
	}
	dead := nm.NewNode("Sigmoid", "dead", []*Value{g.Inputs[0]}, 1)
	g.InsertNodeBefore(ns[0], dead)
	c := g.AddInitializer(nm, "unused", tensor.Scalar(1))
	if got := g.RemoveUnused(); got != 1 || len(g.Initializers) != 0 {
		t.Errorf("RemoveUnused removed %d nodes, %d initializers left (%v)", got, len(g.Initializers), c.Name)
	}
}

func TestMatch(t *testing.T) {
	g, ns := chain("Conv", "BatchNormalization", "Relu")
	w := &Value{Name: "w", Const: tensor.MustNew(tensor.Float32, []int{3, 3, 1, 1})}
	g.Initializers = []*Value{w}
	ns[0].Inputs = append(ns[0].Inputs, w)
	ix := g.Index()
	p := &Pattern{Op: "Relu|Clip", Bind: "act", Inputs: []*Pattern{
		{Op: "BatchNormalization", SingleUse: true, Bind: "bn", Inputs: []*Pattern{
			{Op: "Conv", SingleUse: true, Bind: "conv", Inputs: []*Pattern{nil, {Const: true, BindValue: "w"}}},
		}},
	}}
	r, ok := Match(ix, ns[2], p)
	if !ok || r.Nodes["conv"] != ns[0] || r.Nodes["bn"] != ns[1] || r.Nodes["act"] != ns[2] || r.Values["w"] != w {
		t.Fatalf("Match: %v %+v", ok, r)
	}
	// A second reader of the Conv output breaks the single-use condition.
	extra := &Node{OpType: "Sigmoid", Inputs: []*Value{ns[0].Outputs[0]}, Outputs: []*Value{{Name: "s"}}}
	g.Nodes = append(g.Nodes, extra)
	if _, ok := Match(g.Index(), ns[2], p); ok {
		t.Fatal("matched although conv output has two readers")
	}
	g.Nodes = g.Nodes[:3]
	ix = g.Index()
	c, ok := MatchChain(ix, ns[0], Step{Op: "Conv"}, Step{Op: "BatchNormalization", Input: 0}, Step{Op: "Add", Optional: true, Input: -1}, Step{Op: "Relu", Input: 0})
	if !ok || names(c) != "Conv0,BatchNormalization1,Relu2" {
		t.Fatalf("MatchChain: %v %s", ok, names(c))
	}
	if _, ok := MatchChain(ix, ns[0], Step{Op: "Conv"}, Step{Op: "Relu", Input: 0}); ok {
		t.Fatal("MatchChain matched Conv->Relu across a BatchNormalization")
	}
}

func TestBroadcastAndReshape(t *testing.T) {
	sym := Shape{{Value: -1, Param: "N"}, {Value: 3}, {Value: 1}}
	b, err := BroadcastShapes(sym, KnownShape(4, 1, 5))
	if err != nil || b.String() != "[4,3,5]" {
		t.Errorf("broadcast %v %v", b, err)
	}
	b, err = BroadcastShapes(sym, KnownShape(5))
	if err != nil || b.String() != "[N,3,5]" {
		t.Errorf("broadcast %v %v", b, err)
	}
	if _, err := BroadcastShapes(KnownShape(2, 3), KnownShape(4)); err == nil {
		t.Error("2x3 and 4 broadcast")
	}
	r, err := ReshapeShape(Shape{{Value: -1, Param: "N"}, {Value: 4}, {Value: 6}}, []int64{0, -1}, false)
	if err != nil || r.String() != "[N,?]" {
		t.Errorf("reshape %v %v", r, err)
	}
	r, err = ReshapeShape(KnownShape(2, 4, 6), []int64{0, -1}, false)
	if err != nil || r.String() != "[2,24]" {
		t.Errorf("reshape %v %v", r, err)
	}
	if _, err := ReshapeShape(KnownShape(2, 4, 6), []int64{5, -1}, false); err == nil {
		t.Error("reshape 48 elements to 5x?")
	}
	m, err := MatMulShape(Shape{{Value: -1, Param: "B"}, {Value: 7}, {Value: 4}}, KnownShape(4, 9))
	if err != nil || m.String() != "[B,7,9]" {
		t.Errorf("matmul %v %v", m, err)
	}
}
