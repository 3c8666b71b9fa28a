package graph

import (
	"fmt"
	"math"

	"github.com/x448/float16"

	"github.com/qtool/qtool/internal/tensor"
)

// Equal compares two graphs structurally: nodes in order with their op,
// domain, name, attributes and the names of their inputs and outputs;
// inputs, outputs, initializers (bit-identical data), value_info, doc
// strings and metadata; subgraphs recursively. It returns nil when they are
// equal, or an error describing the first difference. Round-trip tests use
// it.
func Equal(a, b *Graph) error {
	return equalGraph("graph", a, b)
}

func equalGraph(where string, a, b *Graph) error {
	if (a == nil) != (b == nil) {
		return fmt.Errorf("%s: one graph is nil", where)
	}
	if a == nil {
		return nil
	}
	if a.Name != b.Name {
		return fmt.Errorf("%s: name %q != %q", where, a.Name, b.Name)
	}
	if a.DocString != b.DocString {
		return fmt.Errorf("%s: doc_string differs", where)
	}
	if err := equalKV(where+": metadata", a.Metadata, b.Metadata); err != nil {
		return err
	}
	if err := equalValues(where+": inputs", a.Inputs, b.Inputs, true); err != nil {
		return err
	}
	if err := equalValues(where+": outputs", a.Outputs, b.Outputs, true); err != nil {
		return err
	}
	if err := equalValues(where+": initializers", a.Initializers, b.Initializers, true); err != nil {
		return err
	}
	if err := equalValues(where+": value_info", a.ValueInfo, b.ValueInfo, true); err != nil {
		return err
	}
	if fmt.Sprint(a.InitializerInputs) != fmt.Sprint(b.InitializerInputs) {
		return fmt.Errorf("%s: initializer inputs %v != %v", where, a.InitializerInputs, b.InitializerInputs)
	}
	if fmt.Sprint(a.Opsets) != fmt.Sprint(b.Opsets) {
		return fmt.Errorf("%s: opsets %v != %v", where, a.Opsets, b.Opsets)
	}
	if len(a.Nodes) != len(b.Nodes) {
		return fmt.Errorf("%s: %d nodes != %d", where, len(a.Nodes), len(b.Nodes))
	}
	for i := range a.Nodes {
		if err := equalNode(fmt.Sprintf("%s: node %d (%v)", where, i, a.Nodes[i]), a.Nodes[i], b.Nodes[i]); err != nil {
			return err
		}
	}
	return nil
}

func equalKV(where string, a, b []KV) error {
	if len(a) != len(b) {
		return fmt.Errorf("%s: %d entries != %d", where, len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			return fmt.Errorf("%s: entry %d %v != %v", where, i, a[i], b[i])
		}
	}
	return nil
}

func equalValues(where string, a, b []*Value, full bool) error {
	if len(a) != len(b) {
		return fmt.Errorf("%s: %d values != %d", where, len(a), len(b))
	}
	for i := range a {
		if err := equalValue(fmt.Sprintf("%s[%d]", where, i), a[i], b[i], full); err != nil {
			return err
		}
	}
	return nil
}

func equalValue(where string, a, b *Value, full bool) error {
	if (a == nil) != (b == nil) {
		return fmt.Errorf("%s: one value is nil", where)
	}
	if a == nil {
		return nil
	}
	if a.Name != b.Name {
		return fmt.Errorf("%s: name %q != %q", where, a.Name, b.Name)
	}
	if !full {
		return nil
	}
	if a.DType != b.DType {
		return fmt.Errorf("%s %q: dtype %v != %v", where, a.Name, a.DType, b.DType)
	}
	if a.Shape.String() != b.Shape.String() {
		return fmt.Errorf("%s %q: shape %v != %v", where, a.Name, a.Shape, b.Shape)
	}
	if a.Type.String() != b.Type.String() || (a.Type != nil && b.Type != nil && a.Type.Denotation != b.Type.Denotation) {
		return fmt.Errorf("%s %q: type %v != %v", where, a.Name, a.Type, b.Type)
	}
	if a.DocString != b.DocString || a.ConstDocString != b.ConstDocString {
		return fmt.Errorf("%s %q: doc_string differs", where, a.Name)
	}
	if err := equalKV(where+" metadata", a.Metadata, b.Metadata); err != nil {
		return err
	}
	if err := equalKV(where+" tensor metadata", a.ConstMetadata, b.ConstMetadata); err != nil {
		return err
	}
	if (a.Const == nil) != (b.Const == nil) {
		return fmt.Errorf("%s %q: only one is constant", where, a.Name)
	}
	if a.Const != nil && !TensorsIdentical(a.Const, b.Const) {
		return fmt.Errorf("%s %q: constant data differs", where, a.Name)
	}
	return nil
}

func equalNode(where string, a, b *Node) error {
	if a.Name != b.Name || a.OpType != b.OpType || a.Domain != b.Domain {
		return fmt.Errorf("%s: %s/%s/%q != %s/%s/%q", where, a.Domain, a.OpType, a.Name, b.Domain, b.OpType, b.Name)
	}
	if a.DocString != b.DocString {
		return fmt.Errorf("%s: doc_string differs", where)
	}
	if err := equalKV(where+": metadata", a.Metadata, b.Metadata); err != nil {
		return err
	}
	if err := equalValues(where+": inputs", a.Inputs, b.Inputs, false); err != nil {
		return err
	}
	if err := equalValues(where+": outputs", a.Outputs, b.Outputs, false); err != nil {
		return err
	}
	if len(a.Attrs) != len(b.Attrs) {
		return fmt.Errorf("%s: %d attributes != %d", where, len(a.Attrs), len(b.Attrs))
	}
	for i := range a.Attrs {
		if err := equalAttr(fmt.Sprintf("%s: attribute %q", where, a.Attrs[i].Name), a.Attrs[i], b.Attrs[i]); err != nil {
			return err
		}
	}
	return nil
}

func equalAttr(where string, a, b *Attribute) error {
	if a.Name != b.Name || a.Type != b.Type || a.DocString != b.DocString || a.RefAttrName != b.RefAttrName {
		return fmt.Errorf("%s: name/type/doc differ (%s %v, %s %v)", where, a.Name, a.Type, b.Name, b.Type)
	}
	same := true
	switch a.Type {
	case AttrFloat:
		same = math.Float32bits(a.F) == math.Float32bits(b.F)
	case AttrInt:
		same = a.I == b.I
	case AttrString:
		same = a.S == b.S
	case AttrFloats:
		same = len(a.Floats) == len(b.Floats)
		for i := 0; same && i < len(a.Floats); i++ {
			same = math.Float32bits(a.Floats[i]) == math.Float32bits(b.Floats[i])
		}
	case AttrInts:
		same = fmt.Sprint(a.Ints) == fmt.Sprint(b.Ints)
	case AttrStrings:
		same = fmt.Sprintf("%q", a.Strings) == fmt.Sprintf("%q", b.Strings)
	case AttrTensor:
		same = TensorsIdentical(a.T, b.T)
	case AttrTensors:
		same = len(a.Tensors) == len(b.Tensors)
		for i := 0; same && i < len(a.Tensors); i++ {
			same = TensorsIdentical(a.Tensors[i], b.Tensors[i])
		}
	case AttrTypeProto:
		same = a.TP.String() == b.TP.String()
	case AttrTypeProtos:
		same = len(a.TPs) == len(b.TPs)
		for i := 0; same && i < len(a.TPs); i++ {
			same = a.TPs[i].String() == b.TPs[i].String()
		}
	case AttrGraph:
		return equalGraph(where, a.G, b.G)
	case AttrGraphs:
		if len(a.Graphs) != len(b.Graphs) {
			return fmt.Errorf("%s: %d graphs != %d", where, len(a.Graphs), len(b.Graphs))
		}
		for i := range a.Graphs {
			if err := equalGraph(fmt.Sprintf("%s[%d]", where, i), a.Graphs[i], b.Graphs[i]); err != nil {
				return err
			}
		}
	}
	if !same {
		return fmt.Errorf("%s: values differ", where)
	}
	return nil
}

// TensorsIdentical reports whether two tensors have the same dtype, shape
// and bit-identical elements (NaNs compare by bit pattern).
func TensorsIdentical(a, b *tensor.Tensor) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.DType != b.DType || !tensor.SameShape(a.Shape, b.Shape) || a.Len() != b.Len() {
		return false
	}
	switch x := a.Data.(type) {
	case []float32:
		y, ok := b.Data.([]float32)
		if !ok {
			return false
		}
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				return false
			}
		}
		return true
	case []float64:
		y, ok := b.Data.([]float64)
		if !ok {
			return false
		}
		for i := range x {
			if math.Float64bits(x[i]) != math.Float64bits(y[i]) {
				return false
			}
		}
		return true
	case []float16.Float16:
		return sliceEq(x, b.Data)
	case []int8:
		return sliceEq(x, b.Data)
	case []uint8:
		return sliceEq(x, b.Data)
	case []int16:
		return sliceEq(x, b.Data)
	case []uint16:
		return sliceEq(x, b.Data)
	case []int32:
		return sliceEq(x, b.Data)
	case []uint32:
		return sliceEq(x, b.Data)
	case []int64:
		return sliceEq(x, b.Data)
	case []uint64:
		return sliceEq(x, b.Data)
	case []bool:
		return sliceEq(x, b.Data)
	case []string:
		return sliceEq(x, b.Data)
	}
	return false
}

func sliceEq[T comparable](x []T, other any) bool {
	y, ok := other.([]T)
	if !ok || len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}
