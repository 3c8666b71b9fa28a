// Package malformed builds the malformed ONNX models that the loader must
// refuse: each case is a small model with one defect and a substring the
// error must contain. internal/model's table test loads them, and
// tools/malformed writes them to testdata/malformed/ for command-line tests.
package malformed

import (
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/qtool/qtool/internal/model/onnxpb"
)

// Case is one malformed model.
type Case struct {
	Name string
	// Data returns the serialized model.
	Data func() []byte
	// Want is a substring of the error the loader must return.
	Want string
}

func marshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err) // the cases are fixed data: this is a bug in a case
	}
	return b
}

// A small valid model: Y = Relu(MatMul(X, W)), W a 2x2 float initializer.
// BaseModel is the valid model the cases start from.
func BaseModel() *onnxpb.ModelProto {
	f32 := int32(onnxpb.TensorProto_FLOAT)
	vi := func(name string, dims ...int64) *onnxpb.ValueInfoProto {
		sp := &onnxpb.TensorShapeProto{}
		for _, d := range dims {
			sp.Dim = append(sp.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		}
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(f32), Shape: sp}}}}
	}
	return &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{
			Name: proto.String("g"),
			Node: []*onnxpb.NodeProto{
				{OpType: proto.String("MatMul"), Name: proto.String("mm"), Input: []string{"X", "W"}, Output: []string{"H"}},
				{OpType: proto.String("Relu"), Name: proto.String("relu"), Input: []string{"H"}, Output: []string{"Y"}},
			},
			Initializer: []*onnxpb.TensorProto{{Name: proto.String("W"), DataType: proto.Int32(f32), Dims: []int64{2, 2}, FloatData: []float32{1, 2, 3, 4}}},
			Input:       []*onnxpb.ValueInfoProto{vi("X", 1, 2)},
			Output:      []*onnxpb.ValueInfoProto{vi("Y", 1, 2)},
		},
	}
}

// External is a TensorProto named W (float 2x2) stored in an external file.
func External(loc string, kv ...string) *onnxpb.TensorProto {
	tp := &onnxpb.TensorProto{Name: proto.String("W"), DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Dims: []int64{2, 2},
		DataLocation: onnxpb.TensorProto_EXTERNAL.Enum()}
	tp.ExternalData = append(tp.ExternalData, &onnxpb.StringStringEntryProto{Key: proto.String("location"), Value: proto.String(loc)})
	for i := 0; i+1 < len(kv); i += 2 {
		tp.ExternalData = append(tp.ExternalData, &onnxpb.StringStringEntryProto{Key: proto.String(kv[i]), Value: proto.String(kv[i+1])})
	}
	return tp
}

// SupportFiles creates, in the folder the models are loaded from, the data
// files the external-data cases refer to: w.bin (16 bytes), short.bin (8
// bytes) and link.bin, a symlink to outside (a file outside the folder).
func SupportFiles(dir, outside string) error {
	if err := os.WriteFile(filepath.Join(dir, "w.bin"), make([]byte, 16), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "short.bin"), make([]byte, 8), 0o644); err != nil {
		return err
	}
	link := filepath.Join(dir, "link.bin")
	os.Remove(link)
	return os.Symlink(outside, link)
}

// Cases returns every malformed model.
func Cases() []Case {
	mut := func(f func(m *onnxpb.ModelProto)) func() []byte {
		return func() []byte {
			m := BaseModel()
			f(m)
			return marshal(m)
		}
	}
	ext := func(loc string, kv ...string) func() []byte {
		return mut(func(m *onnxpb.ModelProto) { m.Graph.Initializer[0] = External(loc, kv...) })
	}
	return []Case{
		{"truncated", func() []byte { b := marshal(BaseModel()); return b[:len(b)/2] }, "truncated or corrupt"},
		{"garbage", func() []byte { return []byte{0xff, 0xff, 0xff, 0xff, 0xff} }, "truncated or corrupt"},
		{"empty file", func() []byte { return nil }, "no graph"},
		{"wrong wire type", func() []byte {
			// graph (field 7) sent as a varint instead of a message.
			b := protowire.AppendTag(nil, 1, protowire.VarintType)
			b = protowire.AppendVarint(b, 8)
			b = protowire.AppendTag(b, 7, protowire.VarintType)
			return protowire.AppendVarint(b, 3)
		}, "mistyped field(s) 7 (wire type 0)"},
		{"unknown field", func() []byte {
			b := marshal(BaseModel())
			b = protowire.AppendTag(b, 99, protowire.BytesType)
			return protowire.AppendBytes(b, []byte("future"))
		}, "ModelProto has unknown or mistyped field(s) 99"},
		{"unknown field deep", mut(func(m *onnxpb.ModelProto) {
			m.Graph.Node[0].ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 50, protowire.VarintType), 1))
		}), "NodeProto has unknown or mistyped field(s) 50"},
		{"missing graph", mut(func(m *onnxpb.ModelProto) { m.Graph = nil }), "model has no graph"},
		{"negative dim", mut(func(m *onnxpb.ModelProto) { m.Graph.Initializer[0].Dims = []int64{-2, -2} }), "negative dimension -2"},
		{"too many elements", mut(func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[0].Dims = []int64{1 << 20, 1 << 21}
			m.Graph.Initializer[0].FloatData = nil
		}), "more than"},
		{"huge dims", mut(func(m *onnxpb.ModelProto) { m.Graph.Initializer[0].Dims = []int64{1 << 62, 4} }), "more than"},
		{"raw data short", mut(func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[0].FloatData = nil
			m.Graph.Initializer[0].RawData = make([]byte, 12)
		}), "raw_data has 12 bytes"},
		{"typed data short", mut(func(m *onnxpb.ModelProto) { m.Graph.Initializer[0].FloatData = []float32{1} }), "float_data has 1 values"},
		{"no data", mut(func(m *onnxpb.ModelProto) { m.Graph.Initializer[0].FloatData = nil }), "float_data has 0 values"},
		{"wrong typed field", mut(func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[0].FloatData = nil
			m.Graph.Initializer[0].Int64Data = []int64{1, 2, 3, 4}
		}), "wrong typed field"},
		{"raw and typed", mut(func(m *onnxpb.ModelProto) { m.Graph.Initializer[0].RawData = make([]byte, 16) }), "both raw_data and a typed"},
		{"int8 out of range", mut(func(m *onnxpb.ModelProto) {
			w := m.Graph.Initializer[0]
			w.DataType, w.FloatData, w.Int32Data = proto.Int32(int32(onnxpb.TensorProto_INT8)), nil, []int32{1, 2, 300, 4}
		}), "value 300 out of range for int8"},
		{"unsupported dtype", mut(func(m *onnxpb.ModelProto) {
			w := m.Graph.Initializer[0]
			w.DataType, w.FloatData, w.RawData = proto.Int32(int32(onnxpb.TensorProto_BFLOAT16)), nil, make([]byte, 8)
		}), "unsupported dtype bfloat16"},
		{"bad data location", func() []byte {
			m := BaseModel()
			m.Graph.Initializer[0].DataLocation = onnxpb.TensorProto_DataLocation(7).Enum()
			return marshal(m)
		}, "invalid data_location 7"},
		{"external escapes", ext("../secret.bin"), "escapes the model's folder"},
		{"external absolute", ext("/etc/passwd"), "is absolute"},
		{"external symlink escapes", ext("link.bin"), "resolves outside the model's folder"},
		{"external missing", ext("nope.bin"), `external data file "nope.bin" does not exist`},
		{"external offset", ext("w.bin", "offset", "32"), "offset 32 beyond"},
		{"external length", ext("w.bin", "offset", "8", "length", "16"), "beyond the file's 16 bytes"},
		{"external short", ext("short.bin"), "has 8 bytes, the tensor needs 16"},
		{"external bad offset", ext("w.bin", "offset", "-1"), "not a non-negative integer"},
		{"external no location", ext(""), "without a location"},
		{"cycle", mut(func(m *onnxpb.ModelProto) {
			m.Graph.Node[0].Input[0] = "Y" // MatMul reads Relu's output, Relu reads MatMul's
		}), "cycle through node"},
		{"undefined input", mut(func(m *onnxpb.ModelProto) { m.Graph.Node[1].Input[0] = "nowhere" }), `input "nowhere" is not produced`},
		{"duplicate output", mut(func(m *onnxpb.ModelProto) { m.Graph.Node[1].Output[0] = "H" }), `duplicate output name "H"`},
		{"output shadows input", mut(func(m *onnxpb.ModelProto) { m.Graph.Node[0].Output[0] = "X" }), `duplicate output name "X"`},
		{"graph output missing", mut(func(m *onnxpb.ModelProto) { m.Graph.Output[0].Name = proto.String("Z") }), `graph output "Z" is not produced`},
		{"attribute type mismatch", mut(func(m *onnxpb.ModelProto) {
			m.Graph.Node[1].Attribute = []*onnxpb.AttributeProto{{Name: proto.String("alpha"),
				Type: onnxpb.AttributeProto_INT.Enum(), Floats: []float32{1}}}
		}), "type is INT but the FLOATS field is set"},
		{"attribute without value", mut(func(m *onnxpb.ModelProto) {
			m.Graph.Node[1].Attribute = []*onnxpb.AttributeProto{{Name: proto.String("alpha")}}
		}), "no type and no value"},
		{"sparse attribute", mut(func(m *onnxpb.ModelProto) {
			m.Graph.Node[1].Attribute = []*onnxpb.AttributeProto{{Name: proto.String("s"),
				Type: onnxpb.AttributeProto_SPARSE_TENSOR.Enum(), SparseTensor: &onnxpb.SparseTensorProto{}}}
		}), "sparse tensor attributes are not supported"},
		{"sparse initializer", mut(func(m *onnxpb.ModelProto) {
			m.Graph.SparseInitializer = []*onnxpb.SparseTensorProto{{}}
		}), "sparse initializers are not supported"},
		{"duplicate initializer", mut(func(m *onnxpb.ModelProto) {
			m.Graph.Initializer = append(m.Graph.Initializer, m.Graph.Initializer[0])
		}), `duplicate initializer "W"`},
		{"no op type", mut(func(m *onnxpb.ModelProto) { m.Graph.Node[0].OpType = nil }), "has no op_type"},
		{"domain without opset", mut(func(m *onnxpb.ModelProto) { m.Graph.Node[1].Domain = proto.String("com.microsoft") }),
			`domain "com.microsoft" has no opset_import`},
		{"duplicate opset", mut(func(m *onnxpb.ModelProto) {
			m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String("ai.onnx"), Version: proto.Int64(11)})
		}), "lists domain \"ai.onnx\" twice"},
		{"negative declared dim", mut(func(m *onnxpb.ModelProto) {
			m.Graph.Input[0].Type.GetTensorType().Shape.Dim[0].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: -1}
		}), "negative dimension -1"},
		{"subgraph undefined outer value", mut(func(m *onnxpb.ModelProto) {
			body := &onnxpb.GraphProto{Name: proto.String("then"),
				Node:   []*onnxpb.NodeProto{{OpType: proto.String("Identity"), Input: []string{"ghost"}, Output: []string{"t"}}},
				Output: []*onnxpb.ValueInfoProto{{Name: proto.String("t")}}}
			m.Graph.Node = append(m.Graph.Node, &onnxpb.NodeProto{OpType: proto.String("If"), Input: []string{"X"}, Output: []string{"o"},
				Attribute: []*onnxpb.AttributeProto{
					{Name: proto.String("then_branch"), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: body},
					{Name: proto.String("else_branch"), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: body}}})
		}), `subgraph "then": node Identity (output "t"): input "ghost" is not produced`},
		{"string tensor raw", mut(func(m *onnxpb.ModelProto) {
			w := m.Graph.Initializer[0]
			w.DataType, w.FloatData, w.RawData = proto.Int32(int32(onnxpb.TensorProto_STRING)), nil, []byte("abcd")
		}), "string tensor with raw_data"},
		{"segment", mut(func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[0].Segment = &onnxpb.TensorProto_Segment{Begin: proto.Int64(0), End: proto.Int64(1)}
		}), "segmented tensors"},
	}
}
