package model

import (
	"errors"
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model/onnxpb"
	"github.com/qtool/qtool/internal/tensor"
)

// scope resolves value names: a subgraph sees its own values first, then
// those of the graphs around it.
type scope struct {
	parent *scope
	vals   map[string]*graph.Value
}

func (s *scope) lookup(name string) *graph.Value {
	for ; s != nil; s = s.parent {
		if v, ok := s.vals[name]; ok {
			return v
		}
	}
	return nil
}

type decoder struct {
	dir      string
	external []string
	opsets   map[string]int64
	// irVersion is the file's; below 4 every initializer is also a graph
	// input by the spec, which is how the encoder writes such files.
	irVersion int64
}

func kvs(in []*onnxpb.StringStringEntryProto) []graph.KV {
	if len(in) == 0 {
		return nil
	}
	out := make([]graph.KV, len(in))
	for i, kv := range in {
		out[i] = graph.KV{Key: kv.GetKey(), Value: kv.GetValue()}
	}
	return out
}

// valueType reads a ValueInfo's type into v: a plain tensor type fills
// DType and Shape; any other type (and a tensor with a denotation) is kept
// whole in v.Type.
func valueType(v *graph.Value, tp *onnxpb.TypeProto) error {
	if tp == nil {
		return nil
	}
	t, err := typeFromProto(tp, 0)
	if err != nil {
		return fmt.Errorf("value %q: %v", v.Name, err)
	}
	if t == nil {
		return nil
	}
	if t.Kind == graph.KindTensor {
		v.DType, v.Shape = t.DType, t.Shape
		if t.Denotation == "" {
			return nil
		}
	}
	v.Type = t
	return nil
}

func elemType(et int32) (tensor.DType, error) {
	if et < 0 || et > 255 {
		return 0, fmt.Errorf("invalid elem_type %d", et)
	}
	return tensor.DType(et), nil
}

// typeFromProto converts a TypeProto; nil means no type at all (allowed for
// subgraph values). depth bounds recursion on hostile input.
func typeFromProto(tp *onnxpb.TypeProto, depth int) (*graph.Type, error) {
	if tp == nil {
		return nil, nil
	}
	if depth > 32 {
		return nil, errors.New("type nested too deeply")
	}
	t := &graph.Type{Denotation: tp.GetDenotation()}
	var err error
	switch x := tp.Value.(type) {
	case nil:
		if t.Denotation != "" {
			return nil, errors.New("type has a denotation but no value")
		}
		return nil, nil
	case *onnxpb.TypeProto_TensorType:
		t.Kind = graph.KindTensor
		if t.DType, err = elemType(x.TensorType.GetElemType()); err != nil {
			return nil, err
		}
		if t.Shape, err = shapeFromProto(x.TensorType.Shape); err != nil {
			return nil, err
		}
	case *onnxpb.TypeProto_SparseTensorType:
		t.Kind = graph.KindSparseTensor
		if t.DType, err = elemType(x.SparseTensorType.GetElemType()); err != nil {
			return nil, err
		}
		if t.Shape, err = shapeFromProto(x.SparseTensorType.Shape); err != nil {
			return nil, err
		}
	case *onnxpb.TypeProto_SequenceType:
		t.Kind = graph.KindSequence
		if t.Elem, err = typeFromProto(x.SequenceType.ElemType, depth+1); err != nil {
			return nil, err
		}
	case *onnxpb.TypeProto_OptionalType:
		t.Kind = graph.KindOptional
		if t.Elem, err = typeFromProto(x.OptionalType.ElemType, depth+1); err != nil {
			return nil, err
		}
	case *onnxpb.TypeProto_MapType:
		t.Kind = graph.KindMap
		if t.DType, err = elemType(x.MapType.GetKeyType()); err != nil {
			return nil, err
		}
		if t.Elem, err = typeFromProto(x.MapType.ValueType, depth+1); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("unknown type")
	}
	return t, nil
}

func shapeFromProto(sp *onnxpb.TensorShapeProto) (graph.Shape, error) {
	if sp == nil {
		return nil, nil
	}
	s := make(graph.Shape, len(sp.Dim))
	for i, d := range sp.Dim {
		if d.Denotation != nil {
			return nil, errors.New("dimension denotation is not supported")
		}
		switch x := d.Value.(type) {
		case *onnxpb.TensorShapeProto_Dimension_DimValue:
			if x.DimValue < 0 {
				return nil, fmt.Errorf("negative dimension %d", x.DimValue)
			}
			s[i] = graph.Dim{Value: x.DimValue}
		case *onnxpb.TensorShapeProto_Dimension_DimParam:
			s[i] = graph.Dim{Value: -1, Param: x.DimParam}
		default:
			s[i] = graph.Dim{Value: -1}
		}
	}
	return s, nil
}

func (d *decoder) graph(gp *onnxpb.GraphProto, parent *scope) (*graph.Graph, error) {
	if len(gp.SparseInitializer) > 0 {
		return nil, fmt.Errorf("graph %q: sparse initializers are not supported", gp.GetName())
	}
	if len(gp.QuantizationAnnotation) > 0 {
		return nil, fmt.Errorf("graph %q: quantization_annotation is not supported", gp.GetName())
	}
	g := &graph.Graph{
		Name:      gp.GetName(),
		DocString: gp.GetDocString(),
		Metadata:  kvs(gp.MetadataProps),
		Opsets:    d.opsets,
	}
	sc := &scope{parent: parent, vals: map[string]*graph.Value{}}
	where := func(what string) string {
		if parent == nil {
			return what
		}
		return fmt.Sprintf("subgraph %q: %s", g.Name, what)
	}

	for _, tp := range gp.Initializer {
		name := tp.GetName()
		if name == "" {
			return nil, errors.New(where("initializer without a name"))
		}
		if sc.vals[name] != nil {
			return nil, errors.New(where(fmt.Sprintf("duplicate initializer %q", name)))
		}
		t, err := tensorFromProto(tp, d.dir, &d.external)
		if err != nil {
			return nil, errors.New(where(fmt.Sprintf("initializer %q: %v", name, err)))
		}
		v := &graph.Value{Name: name, DType: t.DType, Shape: graph.KnownShape(t.Shape...), Const: t,
			ConstDocString: tp.GetDocString(), ConstMetadata: kvs(tp.MetadataProps)}
		sc.vals[name] = v
		g.Initializers = append(g.Initializers, v)
	}
	for _, vi := range gp.Input {
		name := vi.GetName()
		if name == "" {
			return nil, errors.New(where("graph input without a name"))
		}
		if v := sc.vals[name]; v != nil {
			if v.Const == nil {
				return nil, errors.New(where(fmt.Sprintf("duplicate graph input %q", name)))
			}
			for _, s := range g.InitializerInputs {
				if s == name {
					return nil, errors.New(where(fmt.Sprintf("duplicate graph input %q", name)))
				}
			}
			// An old-IR model lists its initializers as inputs too; the
			// tensor's own dtype and shape are the truth.
			g.InitializerInputs = append(g.InitializerInputs, name)
			v.DocString = vi.GetDocString()
			v.Metadata = kvs(vi.MetadataProps)
			continue
		}
		v := &graph.Value{Name: name, DocString: vi.GetDocString(), Metadata: kvs(vi.MetadataProps)}
		if err := valueType(v, vi.Type); err != nil {
			return nil, errors.New(where("input " + err.Error()))
		}
		sc.vals[name] = v
		g.Inputs = append(g.Inputs, v)
	}
	if parent == nil && d.irVersion > 0 && d.irVersion < 4 {
		// A non-conforming old file may leave initializers out of its
		// inputs; the encoder lists them all, so read them as listed too
		// and a load -> save -> load round trip stays the same graph.
		listed := map[string]bool{}
		for _, name := range g.InitializerInputs {
			listed[name] = true
		}
		for _, v := range g.Initializers {
			if !listed[v.Name] {
				g.InitializerInputs = append(g.InitializerInputs, v.Name)
			}
		}
	}

	// Create every node's outputs first: the file need not be in
	// topological order, and subgraphs may read any value of this graph.
	nodes := make([]*graph.Node, len(gp.Node))
	for i, np := range gp.Node {
		if np.Overload != nil {
			return nil, errors.New(where(fmt.Sprintf("node %q: overload is not supported", np.GetName())))
		}
		if len(np.DeviceConfigurations) > 0 {
			return nil, errors.New(where(fmt.Sprintf("node %q: device_configurations are not supported", np.GetName())))
		}
		if np.GetOpType() == "" {
			return nil, errors.New(where(fmt.Sprintf("node %d (%q) has no op_type", i, np.GetName())))
		}
		n := &graph.Node{Name: np.GetName(), OpType: np.GetOpType(), Domain: np.GetDomain(),
			DocString: np.GetDocString(), Metadata: kvs(np.MetadataProps)}
		key := n.Domain
		if graph.IsDefaultDomain(key) {
			key = ""
		}
		if _, ok := d.opsets[key]; !ok {
			return nil, errors.New(where(fmt.Sprintf("node %v: domain %q has no opset_import", n, n.Domain)))
		}
		n.Outputs = make([]*graph.Value, len(np.Output))
		for j, name := range np.Output {
			if name == "" {
				continue
			}
			if prev := sc.vals[name]; prev != nil {
				return nil, errors.New(where(fmt.Sprintf("node %v: duplicate output name %q (already defined in this graph)", n, name)))
			}
			v := &graph.Value{Name: name}
			sc.vals[name] = v
			n.Outputs[j] = v
		}
		nodes[i] = n
	}
	for i, np := range gp.Node {
		n := nodes[i]
		n.Inputs = make([]*graph.Value, len(np.Input))
		for j, name := range np.Input {
			if name == "" {
				continue
			}
			v := sc.lookup(name)
			if v == nil {
				return nil, errors.New(where(fmt.Sprintf("node %v: input %q is not produced by any node, graph input, initializer or outer-scope value", n, name)))
			}
			n.Inputs[j] = v
		}
		for _, ap := range np.Attribute {
			a, err := d.attribute(ap, sc)
			if err != nil {
				return nil, errors.New(where(fmt.Sprintf("node %v: attribute %q: %v", n, ap.GetName(), err)))
			}
			for _, b := range n.Attrs {
				if b.Name == a.Name {
					return nil, errors.New(where(fmt.Sprintf("node %v: duplicate attribute %q", n, a.Name)))
				}
			}
			n.Attrs = append(n.Attrs, a)
		}
	}
	g.Nodes = nodes

	for _, vi := range gp.Output {
		name := vi.GetName()
		v := sc.lookup(name)
		if v == nil {
			return nil, errors.New(where(fmt.Sprintf("graph output %q is not produced by any node, input or initializer", name)))
		}
		if v.Const == nil {
			if err := mergeType(v, vi); err != nil {
				return nil, errors.New(where("output " + err.Error()))
			}
		}
		if vi.DocString != nil || len(vi.MetadataProps) > 0 {
			v.DocString = vi.GetDocString()
			v.Metadata = kvs(vi.MetadataProps)
		}
		g.Outputs = append(g.Outputs, v)
	}
	for _, vi := range gp.ValueInfo {
		name := vi.GetName()
		v := sc.vals[name]
		if v == nil {
			// Type information about a name this graph never defines: keep
			// it detached so that saving writes it back.
			v = &graph.Value{Name: name}
		}
		if v.Const == nil {
			if err := mergeType(v, vi); err != nil {
				return nil, errors.New(where("value_info " + err.Error()))
			}
		}
		v.DocString = vi.GetDocString()
		v.Metadata = kvs(vi.MetadataProps)
		g.ValueInfo = append(g.ValueInfo, v)
	}
	if err := g.Sort(); err != nil {
		return nil, errors.New(where(err.Error()))
	}
	return g, nil
}

// mergeType applies a declared type unless the value already has one: the
// first declaration (input, then output, then value_info) wins.
func mergeType(v *graph.Value, vi *onnxpb.ValueInfoProto) error {
	if v.DType != tensor.Undefined || v.Shape != nil || v.Type != nil {
		var tmp graph.Value
		tmp.Name = v.Name
		return valueType(&tmp, vi.Type)
	}
	return valueType(v, vi.Type)
}

func (d *decoder) attribute(ap *onnxpb.AttributeProto, sc *scope) (*graph.Attribute, error) {
	if ap.GetName() == "" {
		return nil, errors.New("attribute without a name")
	}
	type field struct {
		t   onnxpb.AttributeProto_AttributeType
		set bool
	}
	fields := []field{
		{onnxpb.AttributeProto_FLOAT, ap.F != nil},
		{onnxpb.AttributeProto_INT, ap.I != nil},
		{onnxpb.AttributeProto_STRING, ap.S != nil},
		{onnxpb.AttributeProto_TENSOR, ap.T != nil},
		{onnxpb.AttributeProto_GRAPH, ap.G != nil},
		{onnxpb.AttributeProto_SPARSE_TENSOR, ap.SparseTensor != nil},
		{onnxpb.AttributeProto_TYPE_PROTO, ap.Tp != nil},
		{onnxpb.AttributeProto_FLOATS, len(ap.Floats) > 0},
		{onnxpb.AttributeProto_INTS, len(ap.Ints) > 0},
		{onnxpb.AttributeProto_STRINGS, len(ap.Strings) > 0},
		{onnxpb.AttributeProto_TENSORS, len(ap.Tensors) > 0},
		{onnxpb.AttributeProto_GRAPHS, len(ap.Graphs) > 0},
		{onnxpb.AttributeProto_SPARSE_TENSORS, len(ap.SparseTensors) > 0},
		{onnxpb.AttributeProto_TYPE_PROTOS, len(ap.TypeProtos) > 0},
	}
	typ := ap.GetType()
	if typ == onnxpb.AttributeProto_UNDEFINED {
		// IR version 1 files have no type field: the one set field says it.
		var found []onnxpb.AttributeProto_AttributeType
		for _, f := range fields {
			if f.set {
				found = append(found, f.t)
			}
		}
		switch {
		case len(found) == 1:
			typ = found[0]
		case len(found) == 0 && ap.GetRefAttrName() != "":
		case len(found) == 0:
			return nil, errors.New("no type and no value")
		default:
			return nil, fmt.Errorf("no type and several value fields set (%v)", found)
		}
	}
	for _, f := range fields {
		if f.set && f.t != typ {
			return nil, fmt.Errorf("type is %v but the %v field is set", typ, f.t)
		}
	}
	a := &graph.Attribute{Name: ap.GetName(), DocString: ap.GetDocString(), RefAttrName: ap.GetRefAttrName()}
	switch typ {
	case onnxpb.AttributeProto_FLOAT:
		a.Type, a.F = graph.AttrFloat, ap.GetF()
	case onnxpb.AttributeProto_INT:
		a.Type, a.I = graph.AttrInt, ap.GetI()
	case onnxpb.AttributeProto_STRING:
		a.Type, a.S = graph.AttrString, string(ap.S)
	case onnxpb.AttributeProto_FLOATS:
		a.Type, a.Floats = graph.AttrFloats, append([]float32(nil), ap.Floats...)
	case onnxpb.AttributeProto_INTS:
		a.Type, a.Ints = graph.AttrInts, append([]int64(nil), ap.Ints...)
	case onnxpb.AttributeProto_STRINGS:
		a.Type = graph.AttrStrings
		a.Strings = make([]string, len(ap.Strings))
		for i, s := range ap.Strings {
			a.Strings[i] = string(s)
		}
	case onnxpb.AttributeProto_TENSOR:
		a.Type = graph.AttrTensor
		if ap.T == nil {
			return nil, errors.New("tensor attribute without a tensor")
		}
		t, err := tensorFromProto(ap.T, d.dir, &d.external)
		if err != nil {
			return nil, err
		}
		a.T = t
	case onnxpb.AttributeProto_TENSORS:
		a.Type = graph.AttrTensors
		for i, tp := range ap.Tensors {
			t, err := tensorFromProto(tp, d.dir, &d.external)
			if err != nil {
				return nil, fmt.Errorf("tensor %d: %v", i, err)
			}
			a.Tensors = append(a.Tensors, t)
		}
	case onnxpb.AttributeProto_GRAPH:
		a.Type = graph.AttrGraph
		if ap.G == nil {
			return nil, errors.New("graph attribute without a graph")
		}
		g, err := d.graph(ap.G, sc)
		if err != nil {
			return nil, err
		}
		a.G = g
	case onnxpb.AttributeProto_GRAPHS:
		a.Type = graph.AttrGraphs
		for _, gp := range ap.Graphs {
			g, err := d.graph(gp, sc)
			if err != nil {
				return nil, err
			}
			a.Graphs = append(a.Graphs, g)
		}
	case onnxpb.AttributeProto_SPARSE_TENSOR, onnxpb.AttributeProto_SPARSE_TENSORS:
		return nil, errors.New("sparse tensor attributes are not supported")
	case onnxpb.AttributeProto_TYPE_PROTO:
		a.Type = graph.AttrTypeProto
		t, err := typeFromProto(ap.Tp, 0)
		if err != nil {
			return nil, err
		}
		if t == nil {
			return nil, errors.New("empty type_proto")
		}
		a.TP = t
	case onnxpb.AttributeProto_TYPE_PROTOS:
		a.Type = graph.AttrTypeProtos
		for _, tp := range ap.TypeProtos {
			t, err := typeFromProto(tp, 0)
			if err != nil {
				return nil, err
			}
			if t == nil {
				return nil, errors.New("empty type_proto")
			}
			a.TPs = append(a.TPs, t)
		}
	case onnxpb.AttributeProto_UNDEFINED:
		// A reference to a function attribute (ref_attr_name) only.
	default:
		return nil, fmt.Errorf("unknown attribute type %d", int32(typ))
	}
	return a, nil
}
