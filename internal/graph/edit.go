package graph

import (
	"fmt"
	"strconv"

	"github.com/qtool/qtool/internal/tensor"
)

// Index is a snapshot of who produces and who reads each value of one graph.
// It is not updated by edits: build a new one after changing the graph.
type Index struct {
	// Producer maps a value to the node of this graph that outputs it.
	Producer map[*Value]*Node
	// Consumers maps a value to the nodes of this graph that read it, in
	// node order, each once. A node whose subgraph reads the value counts
	// as a consumer.
	Consumers map[*Value][]*Node
	// Outputs holds the graph outputs.
	Outputs map[*Value]bool
}

// Index builds the producer/consumer maps of g (not of its subgraphs).
func (g *Graph) Index() *Index {
	ix := &Index{
		Producer:  map[*Value]*Node{},
		Consumers: map[*Value][]*Node{},
		Outputs:   map[*Value]bool{},
	}
	for _, n := range g.Nodes {
		for _, v := range n.Outputs {
			if v != nil {
				ix.Producer[v] = n
			}
		}
		seen := map[*Value]bool{}
		for _, v := range append(append([]*Value(nil), n.Inputs...), n.SubgraphInputs()...) {
			if v != nil && !seen[v] {
				seen[v] = true
				ix.Consumers[v] = append(ix.Consumers[v], n)
			}
		}
	}
	for _, v := range g.Outputs {
		ix.Outputs[v] = true
	}
	return ix
}

// Producers returns value → producing node for g.
func (g *Graph) Producers() map[*Value]*Node { return g.Index().Producer }

// Consumers returns value → reading nodes for g.
func (g *Graph) Consumers() map[*Value][]*Node { return g.Index().Consumers }

// SingleUse reports whether v is read by exactly one node and is not a
// graph output: the condition for fusing its producer into that node.
func (ix *Index) SingleUse(v *Value) bool {
	return v != nil && len(ix.Consumers[v]) == 1 && !ix.Outputs[v]
}

// Uses counts the node inputs reading v plus one if it is a graph output.
func (ix *Index) Uses(v *Value) int {
	n := len(ix.Consumers[v])
	if ix.Outputs[v] {
		n++
	}
	return n
}

// ReplaceAllUses makes every reader of old read new instead: node inputs in
// g and its subgraphs, and g's outputs. (A value read by a subgraph from
// outside is the same *Value, so subgraph readers are rewired too.)
func (g *Graph) ReplaceAllUses(old, new *Value) {
	for _, n := range g.Nodes {
		for i, v := range n.Inputs {
			if v == old {
				n.Inputs[i] = new
			}
		}
		for _, sg := range n.Subgraphs() {
			sg.replaceInside(old, new)
		}
	}
	for i, v := range g.Outputs {
		if v == old {
			g.Outputs[i] = new
		}
	}
}

func (g *Graph) replaceInside(old, new *Value) {
	for _, n := range g.Nodes {
		for i, v := range n.Inputs {
			if v == old {
				n.Inputs[i] = new
			}
		}
		for _, sg := range n.Subgraphs() {
			sg.replaceInside(old, new)
		}
	}
	for i, v := range g.Outputs {
		if v == old {
			g.Outputs[i] = new
		}
	}
}

// RemoveNode deletes n from g.Nodes; it reports whether n was there. Its
// outputs are not rewired: do that first with ReplaceAllUses. Like the
// insert helpers it builds a new slice, so a loop ranging over the old
// g.Nodes may edit the graph safely.
func (g *Graph) RemoveNode(n *Node) bool {
	for i, m := range g.Nodes {
		if m == n {
			g.Nodes = append(g.Nodes[:i:i], g.Nodes[i+1:]...)
			return true
		}
	}
	return false
}

// InsertNodeBefore puts n just before ref (at the end if ref is absent).
func (g *Graph) InsertNodeBefore(ref, n *Node) {
	for i, m := range g.Nodes {
		if m == ref {
			g.Nodes = append(g.Nodes[:i:i], append([]*Node{n}, g.Nodes[i:]...)...)
			return
		}
	}
	g.Nodes = append(g.Nodes, n)
}

// InsertNodeAfter puts n just after ref (at the end if ref is absent).
func (g *Graph) InsertNodeAfter(ref, n *Node) {
	for i, m := range g.Nodes {
		if m == ref {
			g.Nodes = append(g.Nodes[:i+1:i+1], append([]*Node{n}, g.Nodes[i+1:]...)...)
			return
		}
	}
	g.Nodes = append(g.Nodes, n)
}

// RemoveUnused deletes nodes none of whose outputs is read (transitively)
// and initializers nothing reads, keeping graph outputs. It returns how
// many nodes it removed.
func (g *Graph) RemoveUnused() int {
	removed := 0
	for {
		ix := g.Index()
		var keep []*Node
		for _, n := range g.Nodes {
			used := false
			for _, v := range n.Outputs {
				if v != nil && ix.Uses(v) > 0 {
					used = true
				}
			}
			if used || len(n.Outputs) == 0 {
				keep = append(keep, n)
			}
		}
		if len(keep) == len(g.Nodes) {
			var inits []*Value
			for _, v := range g.Initializers {
				if ix.Uses(v) > 0 || g.isInitializerInput(v.Name) {
					inits = append(inits, v)
				}
			}
			g.Initializers = inits
			return removed
		}
		removed += len(g.Nodes) - len(keep)
		g.Nodes = keep
	}
}

func (g *Graph) isInitializerInput(name string) bool {
	for _, s := range g.InitializerInputs {
		if s == name {
			return true
		}
	}
	return false
}

// Namer hands out names that no value or node of a graph (and its
// subgraphs) uses yet. Create it on the outermost graph: subgraphs see
// their parents' names.
type Namer struct {
	used map[string]bool
}

// NewNamer collects the names used in g and all its subgraphs.
func (g *Graph) NewNamer() *Namer {
	nm := &Namer{used: map[string]bool{}}
	nm.collect(g)
	return nm
}

func (nm *Namer) collect(g *Graph) {
	add := func(v *Value) {
		if v != nil {
			nm.used[v.Name] = true
		}
	}
	for _, v := range g.Inputs {
		add(v)
	}
	for _, v := range g.Outputs {
		add(v)
	}
	for _, v := range g.Initializers {
		add(v)
	}
	for _, v := range g.ValueInfo {
		add(v)
	}
	for _, n := range g.Nodes {
		if n.Name != "" {
			nm.used[n.Name] = true
		}
		for _, v := range n.Inputs {
			add(v)
		}
		for _, v := range n.Outputs {
			add(v)
		}
		for _, sg := range n.Subgraphs() {
			nm.collect(sg)
		}
	}
}

// Name returns base if unused, else base_1, base_2, ...; the result is
// marked used.
func (nm *Namer) Name(base string) string {
	name := base
	for i := 1; nm.used[name] || name == ""; i++ {
		name = base + "_" + strconv.Itoa(i)
	}
	nm.used[name] = true
	return name
}

// UniqueName is NewNamer().Name(base): fine for a few names; use a Namer
// when creating many.
func (g *Graph) UniqueName(base string) string { return g.NewNamer().Name(base) }

// NewValue creates a value with a unique name (not yet attached anywhere).
func (nm *Namer) NewValue(base string) *Value { return &Value{Name: nm.Name(base)} }

// AddInitializer adds a constant under a unique name derived from base.
func (g *Graph) AddInitializer(nm *Namer, base string, t *tensor.Tensor) *Value {
	shape := KnownShape(t.Shape...)
	v := &Value{Name: nm.Name(base), DType: t.DType, Shape: shape, Const: t}
	g.Initializers = append(g.Initializers, v)
	return v
}

// NewNode builds a node in the default domain with the given inputs and
// fresh outputs named after name.
func (nm *Namer) NewNode(opType, name string, inputs []*Value, nOutputs int, attrs ...*Attribute) *Node {
	n := &Node{Name: nm.Name(name), OpType: opType, Inputs: inputs, Attrs: attrs}
	for i := 0; i < nOutputs; i++ {
		n.Outputs = append(n.Outputs, nm.NewValue(fmt.Sprintf("%s_out%d", n.Name, i)))
	}
	return n
}

// IntAttr, IntsAttr, FloatAttr, FloatsAttr, StringAttr and TensorAttr build
// attributes.
func IntAttr(name string, v int64) *Attribute { return &Attribute{Name: name, Type: AttrInt, I: v} }
func IntsAttr(name string, v []int64) *Attribute {
	return &Attribute{Name: name, Type: AttrInts, Ints: v}
}
func FloatAttr(name string, v float32) *Attribute {
	return &Attribute{Name: name, Type: AttrFloat, F: v}
}
func FloatsAttr(name string, v []float32) *Attribute {
	return &Attribute{Name: name, Type: AttrFloats, Floats: v}
}
func StringAttr(name, v string) *Attribute { return &Attribute{Name: name, Type: AttrString, S: v} }
func TensorAttr(name string, t *tensor.Tensor) *Attribute {
	return &Attribute{Name: name, Type: AttrTensor, T: t}
}

// RemoveAttr deletes the named attribute; it reports whether it was there.
func (n *Node) RemoveAttr(name string) bool {
	for i, a := range n.Attrs {
		if a.Name == name {
			n.Attrs = append(n.Attrs[:i:i], n.Attrs[i+1:]...)
			return true
		}
	}
	return false
}

// ConstValue returns v's constant data: an initializer's tensor, or the
// value attribute of the Constant node producing it (given an Index).
func ConstValue(ix *Index, v *Value) *tensor.Tensor {
	if v == nil {
		return nil
	}
	if v.Const != nil {
		return v.Const
	}
	if ix == nil {
		return nil
	}
	if p := ix.Producer[v]; p != nil && p.OpType == "Constant" && IsDefaultDomain(p.Domain) {
		if t, err := p.AttrTensor("value"); err == nil && t != nil {
			return t
		}
	}
	return nil
}
