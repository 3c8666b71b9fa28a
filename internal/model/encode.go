package model

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model/onnxpb"
	"github.com/qtool/qtool/internal/tensor"
)

func encodeModel(m *Model) (*onnxpb.ModelProto, error) {
	if m == nil || m.Graph == nil {
		return nil, errors.New("model has no graph")
	}
	mp := &onnxpb.ModelProto{
		IrVersion:     proto.Int64(m.IRVersion),
		OpsetImport:   opsetImports(m),
		MetadataProps: kvsProto(m.Metadata),
		Functions:     m.Functions,
		TrainingInfo:  m.TrainingInfo,
	}
	if m.ProducerName != "" {
		mp.ProducerName = proto.String(m.ProducerName)
	}
	if m.ProducerVersion != "" {
		mp.ProducerVersion = proto.String(m.ProducerVersion)
	}
	if m.Domain != "" {
		mp.Domain = proto.String(m.Domain)
	}
	if m.ModelVersion != 0 {
		mp.ModelVersion = proto.Int64(m.ModelVersion)
	}
	if m.DocString != "" {
		mp.DocString = proto.String(m.DocString)
	}
	if err := checkDomains(m.Graph, m.Graph.Opsets); err != nil {
		return nil, err
	}
	g, err := encodeGraph(m.Graph, m.IRVersion)
	if err != nil {
		return nil, err
	}
	mp.Graph = g
	return mp, nil
}

// checkDomains refuses to write a node whose domain has no opset import:
// runtimes reject such files, and a pass that adds com.microsoft ops must
// also set Graph.Opsets["com.microsoft"].
func checkDomains(g *graph.Graph, opsets map[string]int64) error {
	for _, n := range g.Nodes {
		d := n.Domain
		if graph.IsDefaultDomain(d) {
			d = ""
		}
		if _, ok := opsets[d]; !ok {
			return fmt.Errorf("node %v uses domain %q but the model imports no opset for it (set Graph.Opsets[%q])", n, n.Domain, d)
		}
		for _, sg := range n.Subgraphs() {
			if err := checkDomains(sg, opsets); err != nil {
				return err
			}
		}
	}
	return nil
}

func kvsProto(in []graph.KV) []*onnxpb.StringStringEntryProto {
	var out []*onnxpb.StringStringEntryProto
	for _, kv := range in {
		out = append(out, &onnxpb.StringStringEntryProto{Key: proto.String(kv.Key), Value: proto.String(kv.Value)})
	}
	return out
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return proto.String(s)
}

func shapeProto(s graph.Shape) *onnxpb.TensorShapeProto {
	if s == nil {
		return nil
	}
	sp := &onnxpb.TensorShapeProto{Dim: make([]*onnxpb.TensorShapeProto_Dimension, len(s))}
	for i, d := range s {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		switch {
		case d.Param != "":
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d.Param}
		case d.Value >= 0:
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d.Value}
		}
		sp.Dim[i] = dim
	}
	return sp
}

func optDType(dt tensor.DType) *int32 {
	if dt == tensor.Undefined {
		return nil
	}
	return proto.Int32(int32(dt))
}

func typeProto(v *graph.Value) *onnxpb.TypeProto {
	if v.Type != nil {
		t := *v.Type
		if t.Kind == graph.KindTensor {
			// DType and Shape are the live fields; Type adds the denotation.
			t.DType, t.Shape = v.DType, v.Shape
		}
		return fullTypeProto(&t)
	}
	if v.DType == tensor.Undefined && v.Shape == nil {
		return nil
	}
	return &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
		ElemType: optDType(v.DType), Shape: shapeProto(v.Shape)}}}
}

func fullTypeProto(t *graph.Type) *onnxpb.TypeProto {
	if t == nil {
		return &onnxpb.TypeProto{}
	}
	tp := &onnxpb.TypeProto{Denotation: optString(t.Denotation)}
	switch t.Kind {
	case graph.KindTensor:
		tp.Value = &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: optDType(t.DType), Shape: shapeProto(t.Shape)}}
	case graph.KindSparseTensor:
		tp.Value = &onnxpb.TypeProto_SparseTensorType{SparseTensorType: &onnxpb.TypeProto_SparseTensor{ElemType: optDType(t.DType), Shape: shapeProto(t.Shape)}}
	case graph.KindSequence:
		tp.Value = &onnxpb.TypeProto_SequenceType{SequenceType: &onnxpb.TypeProto_Sequence{ElemType: elemProto(t.Elem)}}
	case graph.KindOptional:
		tp.Value = &onnxpb.TypeProto_OptionalType{OptionalType: &onnxpb.TypeProto_Optional{ElemType: elemProto(t.Elem)}}
	case graph.KindMap:
		tp.Value = &onnxpb.TypeProto_MapType{MapType: &onnxpb.TypeProto_Map{KeyType: optDType(t.DType), ValueType: elemProto(t.Elem)}}
	}
	return tp
}

func elemProto(t *graph.Type) *onnxpb.TypeProto {
	if t == nil {
		return nil
	}
	return fullTypeProto(t)
}

func valueInfo(v *graph.Value) *onnxpb.ValueInfoProto {
	return &onnxpb.ValueInfoProto{
		Name:          proto.String(v.Name),
		Type:          typeProto(v),
		DocString:     optString(v.DocString),
		MetadataProps: kvsProto(v.Metadata),
	}
}

func encodeGraph(g *graph.Graph, irVersion int64) (*onnxpb.GraphProto, error) {
	gp := &onnxpb.GraphProto{
		Name:          optString(g.Name),
		DocString:     optString(g.DocString),
		MetadataProps: kvsProto(g.Metadata),
	}
	if g.Name == "" {
		// The spec makes the name required; an empty one is still written.
		gp.Name = proto.String("")
	}
	byName := map[string]*graph.Value{}
	for _, v := range g.Initializers {
		if v.Const == nil {
			return nil, fmt.Errorf("initializer %q has no data", v.Name)
		}
		tp, err := TensorToProto(v.Name, v.Const)
		if err != nil {
			return nil, err
		}
		tp.DocString = optString(v.ConstDocString)
		tp.MetadataProps = kvsProto(v.ConstMetadata)
		gp.Initializer = append(gp.Initializer, tp)
		byName[v.Name] = v
	}
	for _, v := range g.Inputs {
		gp.Input = append(gp.Input, valueInfo(v))
	}
	// IR < 4 requires every initializer to be a graph input too; newer IRs
	// list only those the file listed (they are overridable defaults).
	listed := map[string]bool{}
	for _, name := range g.InitializerInputs {
		if v := byName[name]; v != nil && !listed[name] {
			listed[name] = true
			gp.Input = append(gp.Input, valueInfo(v))
		}
	}
	if irVersion > 0 && irVersion < 4 {
		for _, v := range g.Initializers {
			if !listed[v.Name] {
				listed[v.Name] = true
				gp.Input = append(gp.Input, valueInfo(v))
			}
		}
	}
	for _, v := range g.Outputs {
		if v == nil {
			return nil, errors.New("graph has a nil output")
		}
		gp.Output = append(gp.Output, valueInfo(v))
	}
	for _, v := range g.ValueInfo {
		gp.ValueInfo = append(gp.ValueInfo, valueInfo(v))
	}
	for _, n := range g.Nodes {
		np, err := encodeNode(n, irVersion)
		if err != nil {
			return nil, err
		}
		gp.Node = append(gp.Node, np)
	}
	return gp, nil
}

func names(vs []*graph.Value) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		if v != nil {
			out[i] = v.Name
		}
	}
	return out
}

func encodeNode(n *graph.Node, irVersion int64) (*onnxpb.NodeProto, error) {
	np := &onnxpb.NodeProto{
		Input:         names(n.Inputs),
		Output:        names(n.Outputs),
		Name:          optString(n.Name),
		OpType:        proto.String(n.OpType),
		DocString:     optString(n.DocString),
		MetadataProps: kvsProto(n.Metadata),
	}
	if n.Domain != "" {
		np.Domain = proto.String(n.Domain)
	}
	for _, a := range n.Attrs {
		ap, err := encodeAttr(a, irVersion)
		if err != nil {
			return nil, fmt.Errorf("node %v: attribute %q: %v", n, a.Name, err)
		}
		np.Attribute = append(np.Attribute, ap)
	}
	return np, nil
}

func encodeAttr(a *graph.Attribute, irVersion int64) (*onnxpb.AttributeProto, error) {
	ap := &onnxpb.AttributeProto{
		Name:        proto.String(a.Name),
		DocString:   optString(a.DocString),
		RefAttrName: optString(a.RefAttrName),
	}
	if a.Type != graph.AttrUndefined {
		ap.Type = onnxpb.AttributeProto_AttributeType(a.Type).Enum()
	}
	switch a.Type {
	case graph.AttrFloat:
		ap.F = proto.Float32(a.F)
	case graph.AttrInt:
		ap.I = proto.Int64(a.I)
	case graph.AttrString:
		ap.S = []byte(a.S)
	case graph.AttrFloats:
		ap.Floats = a.Floats
	case graph.AttrInts:
		ap.Ints = a.Ints
	case graph.AttrStrings:
		for _, s := range a.Strings {
			ap.Strings = append(ap.Strings, []byte(s))
		}
	case graph.AttrTensor:
		tp, err := TensorToProto("", a.T)
		if err != nil {
			return nil, err
		}
		ap.T = tp
	case graph.AttrTensors:
		for _, t := range a.Tensors {
			tp, err := TensorToProto("", t)
			if err != nil {
				return nil, err
			}
			ap.Tensors = append(ap.Tensors, tp)
		}
	case graph.AttrGraph:
		g, err := encodeGraph(a.G, irVersion)
		if err != nil {
			return nil, err
		}
		ap.G = g
	case graph.AttrGraphs:
		for _, sg := range a.Graphs {
			g, err := encodeGraph(sg, irVersion)
			if err != nil {
				return nil, err
			}
			ap.Graphs = append(ap.Graphs, g)
		}
	case graph.AttrTypeProto:
		ap.Tp = fullTypeProto(a.TP)
	case graph.AttrTypeProtos:
		for _, t := range a.TPs {
			ap.TypeProtos = append(ap.TypeProtos, fullTypeProto(t))
		}
	case graph.AttrUndefined:
		if a.RefAttrName == "" {
			return nil, errors.New("attribute has no type")
		}
	default:
		return nil, fmt.Errorf("unknown attribute type %v", a.Type)
	}
	return ap, nil
}
