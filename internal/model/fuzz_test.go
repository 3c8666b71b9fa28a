package model

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model/onnxpb"
)

// legacyModel is an opset-1 model with a legacy broadcast Add and a Reshape
// shape attribute, so the fuzzer also exercises Normalize.
func legacyModel() *onnxpb.ModelProto {
	m := baseModel()
	m.IrVersion = proto.Int64(3)
	m.OpsetImport[0].Version = proto.Int64(1)
	b := &onnxpb.TensorProto{Name: proto.String("B"), DataType: proto.Int32(1), Dims: []int64{2}, FloatData: []float32{1, 2}}
	m.Graph.Initializer = append(m.Graph.Initializer, b)
	m.Graph.Node = append(m.Graph.Node,
		&onnxpb.NodeProto{OpType: proto.String("Reshape"), Input: []string{"Y"}, Output: []string{"R"},
			Attribute: []*onnxpb.AttributeProto{{Name: proto.String("shape"), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: []int64{1, 2, 1}}}},
		&onnxpb.NodeProto{OpType: proto.String("Add"), Input: []string{"R", "B"}, Output: []string{"Z"},
			Attribute: []*onnxpb.AttributeProto{
				{Name: proto.String("broadcast"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(1)},
				{Name: proto.String("axis"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(1)}}})
	m.Graph.Output[0].Name = proto.String("Z")
	m.Graph.Output[0].Type = nil
	return m
}

// FuzzLoadBytes: no input may panic or hang the loader, and whatever loads
// must survive a save/load round trip unchanged.
func FuzzLoadBytes(f *testing.F) {
	for _, m := range []*onnxpb.ModelProto{baseModel(), legacyModel()} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := LoadBytes(data, "")
		if err != nil {
			return
		}
		out, err := Marshal(m)
		if err != nil {
			t.Fatalf("loaded model does not marshal: %v", err)
		}
		m2, err := LoadBytes(out, "")
		if err != nil {
			t.Fatalf("saved model does not load: %v", err)
		}
		if err := graph.Equal(m.Graph, m2.Graph); err != nil {
			t.Fatalf("round trip changed the graph: %v", err)
		}
	})
}

func protoMarshal(m proto.Message) ([]byte, error) { return proto.Marshal(m) }
