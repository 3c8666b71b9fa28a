package model

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model/onnxpb"
	"github.com/qtool/qtool/internal/tensor"
)

// TestTypedFields decodes each typed-field layout the ONNX spec defines
// (values packed into int32_data for the narrow types, float16 as bits,
// uint32 in uint64_data) and checks the values and that re-encoding as
// raw_data round-trips to identical tensors.
func TestTypedFields(t *testing.T) {
	dims := []int64{2}
	cases := []struct {
		tp   *onnxpb.TensorProto
		want string
	}{
		{&onnxpb.TensorProto{DataType: proto.Int32(1), Dims: dims, FloatData: []float32{1.5, -2}}, "[1.5 -2]"},
		{&onnxpb.TensorProto{DataType: proto.Int32(11), Dims: dims, DoubleData: []float64{0.25, 1e300}}, "[0.25 1e+300]"},
		{&onnxpb.TensorProto{DataType: proto.Int32(10), Dims: dims, Int32Data: []int32{0x3C00, 0xC000}}, "[1 -2]"}, // float16 1.0, -2.0
		{&onnxpb.TensorProto{DataType: proto.Int32(3), Dims: dims, Int32Data: []int32{-128, 127}}, "[-128 127]"},
		{&onnxpb.TensorProto{DataType: proto.Int32(2), Dims: dims, Int32Data: []int32{0, 255}}, "[0 255]"},
		{&onnxpb.TensorProto{DataType: proto.Int32(5), Dims: dims, Int32Data: []int32{-32768, 32767}}, "[-32768 32767]"},
		{&onnxpb.TensorProto{DataType: proto.Int32(4), Dims: dims, Int32Data: []int32{0, 65535}}, "[0 65535]"},
		{&onnxpb.TensorProto{DataType: proto.Int32(6), Dims: dims, Int32Data: []int32{math.MinInt32, 7}}, "[-2147483648 7]"},
		{&onnxpb.TensorProto{DataType: proto.Int32(7), Dims: dims, Int64Data: []int64{math.MinInt64, 9}}, "[-9223372036854775808 9]"},
		{&onnxpb.TensorProto{DataType: proto.Int32(12), Dims: dims, Uint64Data: []uint64{0, math.MaxUint32}}, "[0 4294967295]"},
		{&onnxpb.TensorProto{DataType: proto.Int32(13), Dims: dims, Uint64Data: []uint64{0, math.MaxUint64}}, "[0 18446744073709551615]"},
		{&onnxpb.TensorProto{DataType: proto.Int32(9), Dims: dims, Int32Data: []int32{1, 0}}, "[true false]"},
		{&onnxpb.TensorProto{DataType: proto.Int32(8), Dims: dims, StringData: [][]byte{[]byte("a"), []byte("bc")}}, "[a bc]"},
		{&onnxpb.TensorProto{DataType: proto.Int32(1), Dims: []int64{}, FloatData: []float32{3}}, "[3]"},
		{&onnxpb.TensorProto{DataType: proto.Int32(1), Dims: []int64{0, 5}}, "[]"},
	}
	for _, c := range cases {
		dt := tensor.DType(c.tp.GetDataType())
		got, err := TensorFromProto(c.tp, "")
		if err != nil {
			t.Errorf("%v: %v", dt, err)
			continue
		}
		s := formatData(got)
		if s != c.want {
			t.Errorf("%v: got %s, want %s", dt, s, c.want)
		}
		tp, err := TensorToProto("x", got)
		if err != nil {
			t.Errorf("%v: %v", dt, err)
			continue
		}
		back, err := TensorFromProto(tp, "")
		if err != nil || !graph.TensorsIdentical(got, back) {
			t.Errorf("%v: raw round trip: %v", dt, err)
		}
	}
	// A uint32 that does not fit, and a float16 pattern with high bits set.
	for _, tp := range []*onnxpb.TensorProto{
		{DataType: proto.Int32(12), Dims: []int64{1}, Uint64Data: []uint64{1 << 32}},
		{DataType: proto.Int32(10), Dims: []int64{1}, Int32Data: []int32{0x10000}},
		{DataType: proto.Int32(9), Dims: []int64{1}, Int32Data: []int32{2}},
	} {
		if _, err := TensorFromProto(tp, ""); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("%v: want an out-of-range error, got %v", tensor.DType(tp.GetDataType()), err)
		}
	}
}

func formatData(t *tensor.Tensor) string {
	if t.DType == tensor.Float16 {
		f, _ := t.AsFloat64()
		return fmt.Sprint(f)
	}
	return fmt.Sprint(t.Data)
}
