// Package graph is qtool's intermediate representation of a model: values
// with dtype and shape, nodes with attributes, initializers, and the helpers
// that passes (fuse, convert) and the runtime use to walk and rewrite it.
//
// A Graph is independent of ONNX's protobuf: internal/model converts between
// the two. Values are shared pointers: a node input is the very *Value its
// producer outputs, and a subgraph (If/Loop/Scan body) that reads a value of
// an enclosing graph holds that same pointer. Names identify values in files.
//
// What the package offers:
//
//   - topo.go: Graph.Sort, a stable topological order (Kahn, ties broken by
//     the current order; a cycle is a *CycleError naming a node on it), and
//     the outer values that subgraphs read (Node.SubgraphInputs).
//   - edit.go: Graph.Index (producer and consumer maps), ReplaceAllUses,
//     RemoveNode, InsertNodeBefore/After, RemoveUnused, a Namer for fresh
//     unique names, AddInitializer, attribute constructors, ConstValue.
//   - match.go: Match (a node and the producers of its inputs against a
//     Pattern tree) and MatchChain (a downstream chain such as
//     Conv→BatchNormalization→Relu with single-consumer links).
//   - infer.go: InferShapes, dtype and shape inference for the ops the
//     runtime supports, with symbolic dims and small constant folding of
//     shape arithmetic.
//   - normalize.go: Normalize, which rewrites opset < 9 operator forms into
//     opset-9 ones so that nothing downstream has to know them.
//   - equal.go: Equal, a structural comparison used by round-trip tests.
package graph

import (
	"fmt"

	"github.com/qtool/qtool/internal/tensor"
)

// Dim is one dimension of a shape: a known size (Value >= 0), a symbolic
// name (Param != ""), or unknown (Value < 0 and Param == "").
type Dim struct {
	Value int64
	Param string
}

// Known reports whether the dimension has a concrete size.
func (d Dim) Known() bool { return d.Value >= 0 && d.Param == "" }

func (d Dim) String() string {
	switch {
	case d.Param != "":
		return d.Param
	case d.Value < 0:
		return "?"
	}
	return fmt.Sprint(d.Value)
}

// Shape is a tensor shape. A nil Shape means the rank is unknown; an empty,
// non-nil Shape is a scalar.
type Shape []Dim

// KnownShape builds a Shape of concrete dims.
func KnownShape(dims ...int) Shape {
	s := make(Shape, len(dims))
	for i, d := range dims {
		s[i] = Dim{Value: int64(d)}
	}
	return s
}

// Ints returns the dims as ints if every dim is known.
func (s Shape) Ints() ([]int, bool) {
	if s == nil {
		return nil, false
	}
	out := make([]int, len(s))
	for i, d := range s {
		if !d.Known() {
			return nil, false
		}
		out[i] = int(d.Value)
	}
	return out, true
}

func (s Shape) String() string {
	if s == nil {
		return "[?rank]"
	}
	out := "["
	for i, d := range s {
		if i > 0 {
			out += ","
		}
		out += d.String()
	}
	return out + "]"
}

// Value is a named tensor edge of the graph.
type Value struct {
	Name  string
	DType tensor.DType // Undefined when not known
	Shape Shape        // nil when the rank is not known
	// Const is the initializer data when the value is a constant of the graph.
	Const *tensor.Tensor
	// DocString and Metadata are carried from ONNX value_info for round trips.
	DocString string
	Metadata  []KV
	// ConstDocString and ConstMetadata are the initializer tensor's own
	// doc_string and metadata_props, carried for round trips.
	ConstDocString string
	ConstMetadata  []KV
	// Type is set only for values that are not plain tensors (sequences,
	// optionals, maps, sparse tensors): the ONNX type, kept for round trips
	// and for the ops that pass such values along. DType and Shape stay
	// unset for them.
	Type *Type
}

// TypeKind is the kind of an ONNX TypeProto.
type TypeKind uint8

const (
	KindTensor TypeKind = iota
	KindSequence
	KindOptional
	KindMap
	KindSparseTensor
)

func (k TypeKind) String() string {
	return [...]string{"tensor", "sequence", "optional", "map", "sparse_tensor"}[k]
}

// Type is a full ONNX type, used where DType and Shape cannot say it.
type Type struct {
	Kind  TypeKind
	DType tensor.DType // tensor and sparse tensor element type; map key type
	Shape Shape        // tensor and sparse tensor shape (nil = unknown rank)
	Elem  *Type        // sequence and optional element; map value (nil = unknown)
	// Denotation is the TypeProto's denotation string.
	Denotation string
}

// String writes the type as ONNX does: seq(tensor(float)).
func (t *Type) String() string {
	if t == nil {
		return "?"
	}
	switch t.Kind {
	case KindSequence:
		return "seq(" + t.Elem.String() + ")"
	case KindOptional:
		return "optional(" + t.Elem.String() + ")"
	case KindMap:
		return fmt.Sprintf("map(%v,%s)", t.DType, t.Elem.String())
	case KindSparseTensor:
		return fmt.Sprintf("sparse_tensor(%v)%v", t.DType, t.Shape)
	}
	return fmt.Sprintf("tensor(%v)%v", t.DType, t.Shape)
}

// KV is an ordered key/value pair (ONNX StringStringEntryProto).
type KV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// AttrType mirrors ONNX AttributeProto.AttributeType.
type AttrType int

const (
	AttrUndefined AttrType = 0
	AttrFloat     AttrType = 1
	AttrInt       AttrType = 2
	AttrString    AttrType = 3
	AttrTensor    AttrType = 4
	AttrGraph     AttrType = 5
	AttrFloats    AttrType = 6
	AttrInts      AttrType = 7
	AttrStrings   AttrType = 8
	AttrTensors   AttrType = 9
	AttrGraphs    AttrType = 10
	// AttrTypeProto and AttrTypeProtos carry ONNX types (Optional's "type").
	AttrTypeProto  AttrType = 13
	AttrTypeProtos AttrType = 14
)

func (t AttrType) String() string {
	switch t {
	case AttrFloat:
		return "float"
	case AttrInt:
		return "int"
	case AttrString:
		return "string"
	case AttrTensor:
		return "tensor"
	case AttrGraph:
		return "graph"
	case AttrFloats:
		return "floats"
	case AttrInts:
		return "ints"
	case AttrStrings:
		return "strings"
	case AttrTensors:
		return "tensors"
	case AttrGraphs:
		return "graphs"
	case AttrTypeProto:
		return "type_proto"
	case AttrTypeProtos:
		return "type_protos"
	}
	return fmt.Sprintf("attrtype(%d)", int(t))
}

// Attribute is a node attribute; exactly the field named by Type is set.
type Attribute struct {
	Name      string
	Type      AttrType
	F         float32
	I         int64
	S         string
	T         *tensor.Tensor
	G         *Graph
	Floats    []float32
	Ints      []int64
	Strings   []string
	Tensors   []*tensor.Tensor
	Graphs    []*Graph
	TP        *Type
	TPs       []*Type
	DocString string
	// RefAttrName is kept for round trips of function bodies.
	RefAttrName string
}

// Node is an operator application. An empty optional input or output is a
// nil entry (ONNX writes it as the empty name).
type Node struct {
	Name      string
	OpType    string
	Domain    string // "" and "ai.onnx" are the default domain
	Inputs    []*Value
	Outputs   []*Value
	Attrs     []*Attribute // in file order, so round trips are exact
	DocString string
	Metadata  []KV
}

// Graph is a (sub)graph: inputs, outputs, nodes, and the values they name.
type Graph struct {
	Name      string
	DocString string
	Inputs    []*Value // runtime inputs (initializers are not listed here)
	Outputs   []*Value
	Nodes     []*Node
	// Initializers lists constant values in file order; each has Const set.
	Initializers []*Value
	// ValueInfo lists the intermediate values whose type the file declared,
	// in file order, for round trips.
	ValueInfo []*Value
	Metadata  []KV
	// Opsets maps domain ("" for ai.onnx) to version. Subgraphs share the
	// model's opsets.
	Opsets map[string]int64
	// InitializerInputs lists initializer names that the file also declared
	// as graph inputs (IR < 4 style), kept for round trips.
	InitializerInputs []string
}

// IsDefaultDomain reports whether a domain string names the ai.onnx domain.
func IsDefaultDomain(d string) bool { return d == "" || d == "ai.onnx" }

// Attr returns the attribute with the given name, or nil.
func (n *Node) Attr(name string) *Attribute {
	for _, a := range n.Attrs {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Input returns input i, or nil if it is absent or optional-empty.
func (n *Node) Input(i int) *Value {
	if i < 0 || i >= len(n.Inputs) {
		return nil
	}
	return n.Inputs[i]
}

// Output returns output i, or nil.
func (n *Node) Output(i int) *Value {
	if i < 0 || i >= len(n.Outputs) {
		return nil
	}
	return n.Outputs[i]
}

// String names the node for error messages: `Conv "conv1"`.
func (n *Node) String() string {
	if n.Name != "" {
		return fmt.Sprintf("%s %q", n.OpType, n.Name)
	}
	if len(n.Outputs) > 0 && n.Outputs[0] != nil {
		return fmt.Sprintf("%s (output %q)", n.OpType, n.Outputs[0].Name)
	}
	return n.OpType
}

// AttrInt returns an int attribute or def when absent; a present attribute
// of another type is an error.
func (n *Node) AttrInt(name string, def int64) (int64, error) {
	a := n.Attr(name)
	if a == nil {
		return def, nil
	}
	if a.Type != AttrInt {
		return 0, fmt.Errorf("%v: attribute %q is %v, want int", n, name, a.Type)
	}
	return a.I, nil
}

// AttrFloat returns a float attribute or def when absent.
func (n *Node) AttrFloat(name string, def float32) (float32, error) {
	a := n.Attr(name)
	if a == nil {
		return def, nil
	}
	if a.Type != AttrFloat {
		return 0, fmt.Errorf("%v: attribute %q is %v, want float", n, name, a.Type)
	}
	return a.F, nil
}

// AttrString returns a string attribute or def when absent.
func (n *Node) AttrString(name string, def string) (string, error) {
	a := n.Attr(name)
	if a == nil {
		return def, nil
	}
	if a.Type != AttrString {
		return "", fmt.Errorf("%v: attribute %q is %v, want string", n, name, a.Type)
	}
	return a.S, nil
}

// AttrInts returns an ints attribute or def when absent.
func (n *Node) AttrInts(name string, def []int64) ([]int64, error) {
	a := n.Attr(name)
	if a == nil {
		return def, nil
	}
	if a.Type != AttrInts {
		return nil, fmt.Errorf("%v: attribute %q is %v, want ints", n, name, a.Type)
	}
	return a.Ints, nil
}

// AttrFloats returns a floats attribute or def when absent.
func (n *Node) AttrFloats(name string, def []float32) ([]float32, error) {
	a := n.Attr(name)
	if a == nil {
		return def, nil
	}
	if a.Type != AttrFloats {
		return nil, fmt.Errorf("%v: attribute %q is %v, want floats", n, name, a.Type)
	}
	return a.Floats, nil
}

// AttrStrings returns a strings attribute or def when absent.
func (n *Node) AttrStrings(name string, def []string) ([]string, error) {
	a := n.Attr(name)
	if a == nil {
		return def, nil
	}
	if a.Type != AttrStrings {
		return nil, fmt.Errorf("%v: attribute %q is %v, want strings", n, name, a.Type)
	}
	return a.Strings, nil
}

// AttrTensor returns a tensor attribute or nil when absent.
func (n *Node) AttrTensor(name string) (*tensor.Tensor, error) {
	a := n.Attr(name)
	if a == nil {
		return nil, nil
	}
	if a.Type != AttrTensor {
		return nil, fmt.Errorf("%v: attribute %q is %v, want tensor", n, name, a.Type)
	}
	return a.T, nil
}

// AttrGraph returns a graph attribute or nil when absent.
func (n *Node) AttrGraph(name string) (*Graph, error) {
	a := n.Attr(name)
	if a == nil {
		return nil, nil
	}
	if a.Type != AttrGraph {
		return nil, fmt.Errorf("%v: attribute %q is %v, want graph", n, name, a.Type)
	}
	return a.G, nil
}

// SetAttr replaces or appends an attribute.
func (n *Node) SetAttr(a *Attribute) {
	for i, b := range n.Attrs {
		if b.Name == a.Name {
			n.Attrs[i] = a
			return
		}
	}
	n.Attrs = append(n.Attrs, a)
}

// Opset returns the graph's opset version for a node's domain (0 if none).
func (g *Graph) Opset(domain string) int64 {
	if IsDefaultDomain(domain) {
		domain = ""
	}
	return g.Opsets[domain]
}
