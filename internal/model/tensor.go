package model

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/x448/float16"
	"google.golang.org/protobuf/proto"

	"github.com/qtool/qtool/internal/model/onnxpb"
	"github.com/qtool/qtool/internal/tensor"
)

// dtypeName names an ONNX data type, including the ones qtool cannot hold,
// so that "unsupported dtype bfloat16" reads better than a number.
func dtypeName(dt int32) string {
	if s, ok := onnxpb.TensorProto_DataType_name[dt]; ok {
		return strings.ToLower(s)
	}
	return fmt.Sprintf("dtype(%d)", dt)
}

// ReadTensorFile reads a serialized TensorProto (the ONNX backend tests'
// input_*.pb and output_*.pb). External data is resolved relative to the
// file's folder.
func ReadTensorFile(path string) (*tensor.Tensor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tp onnxpb.TensorProto
	if err := proto.Unmarshal(data, &tp); err != nil {
		return nil, fmt.Errorf("%s: not a serialized TensorProto: %v", path, err)
	}
	if err := checkUnknown(&tp); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	t, err := tensorFromProto(&tp, filepath.Dir(path), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return t, nil
}

// TensorFromProto converts a TensorProto to a dense tensor. dir is the folder
// that external data locations are relative to ("" refuses external data).
// Sizes are checked before anything is allocated, so a hostile proto cannot
// ask for more memory than its own data occupies.
func TensorFromProto(tp *onnxpb.TensorProto, dir string) (*tensor.Tensor, error) {
	return tensorFromProto(tp, dir, nil)
}

// shapeOf validates ONNX dims and converts them to ints.
func shapeOf(dims []int64) ([]int, int, error) {
	shape := make([]int, len(dims))
	for i, d := range dims {
		if d < 0 {
			return nil, 0, fmt.Errorf("negative dimension %d in dims %v", d, dims)
		}
		if d > tensor.MaxElements {
			return nil, 0, fmt.Errorf("dims %v: more than %d elements", dims, int64(tensor.MaxElements))
		}
		shape[i] = int(d)
	}
	n, err := tensor.NumElements(shape)
	if err != nil {
		return nil, 0, fmt.Errorf("dims %v: %v", dims, err)
	}
	return shape, n, nil
}

func tensorFromProto(tp *onnxpb.TensorProto, dir string, ext *[]string) (*tensor.Tensor, error) {
	if tp == nil {
		return nil, errors.New("missing tensor")
	}
	raw := tp.GetDataType()
	if raw < 0 || raw > 255 || !tensor.DType(raw).Supported() {
		return nil, fmt.Errorf("unsupported dtype %s", dtypeName(raw))
	}
	dt := tensor.DType(raw)
	if tp.Segment != nil {
		return nil, errors.New("segmented tensors are not supported")
	}
	shape, n, err := shapeOf(tp.Dims)
	if err != nil {
		return nil, err
	}

	typed := 0
	for _, c := range []int{len(tp.FloatData), len(tp.Int32Data), len(tp.StringData), len(tp.Int64Data), len(tp.DoubleData), len(tp.Uint64Data)} {
		if c > 0 {
			typed++
		}
	}
	if typed > 1 {
		return nil, errors.New("more than one typed data field is set")
	}
	if loc := tp.GetDataLocation(); loc != onnxpb.TensorProto_DEFAULT && loc != onnxpb.TensorProto_EXTERNAL {
		return nil, fmt.Errorf("invalid data_location %d", int32(loc))
	}
	external := tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL
	if !external && len(tp.ExternalData) > 0 {
		return nil, errors.New("external_data entries on a tensor whose data_location is not EXTERNAL")
	}
	rawData := tp.RawData
	if external {
		if tp.RawData != nil || typed > 0 {
			return nil, errors.New("external tensor also has inline data")
		}
		if dt == tensor.String {
			return nil, errors.New("string tensors cannot use external data")
		}
		rawData, err = readExternal(tp, dir, int64(n)*int64(dt.Size()), ext)
		if err != nil {
			return nil, err
		}
	}

	t := &tensor.Tensor{DType: dt, Shape: shape}
	if rawData != nil {
		if typed > 0 {
			return nil, errors.New("both raw_data and a typed data field are set")
		}
		if dt == tensor.String {
			return nil, errors.New("string tensor with raw_data")
		}
		if want := int64(n) * int64(dt.Size()); int64(len(rawData)) != want {
			return nil, fmt.Errorf("raw_data has %d bytes, shape %v of %v needs %d", len(rawData), shape, dt, want)
		}
		t.Data, err = tensor.DecodeLE(dt, rawData, n)
		if err != nil {
			return nil, err
		}
		return t, nil
	}
	t.Data, err = decodeTyped(tp, dt, n)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// decodeTyped reads the typed repeated fields. ONNX packs every type of 16
// bits or fewer (and float16 as its bit pattern) into int32_data, and uint32
// into uint64_data.
func decodeTyped(tp *onnxpb.TensorProto, dt tensor.DType, n int) (any, error) {
	count := func(field string, got int) error {
		if got != n {
			return fmt.Errorf("%s has %d values, shape %v of %v needs %d", field, got, tp.Dims, dt, n)
		}
		return nil
	}
	i32 := func(lo, hi int64) error {
		if err := count("int32_data", len(tp.Int32Data)); err != nil {
			return err
		}
		for _, v := range tp.Int32Data {
			if int64(v) < lo || int64(v) > hi {
				return fmt.Errorf("int32_data value %d out of range for %v", v, dt)
			}
		}
		return nil
	}
	wrongField := func() error {
		// Some typed field is set, but not the one this dtype uses.
		if len(tp.FloatData)+len(tp.Int32Data)+len(tp.StringData)+len(tp.Int64Data)+len(tp.DoubleData)+len(tp.Uint64Data) > 0 {
			return fmt.Errorf("tensor of %v has its data in the wrong typed field", dt)
		}
		return nil
	}
	switch dt {
	case tensor.Float32:
		if len(tp.FloatData) == 0 {
			if err := wrongField(); err != nil {
				return nil, err
			}
		}
		if err := count("float_data", len(tp.FloatData)); err != nil {
			return nil, err
		}
		return append(make([]float32, 0, n), tp.FloatData...), nil
	case tensor.Float64:
		if len(tp.DoubleData) == 0 {
			if err := wrongField(); err != nil {
				return nil, err
			}
		}
		if err := count("double_data", len(tp.DoubleData)); err != nil {
			return nil, err
		}
		return append(make([]float64, 0, n), tp.DoubleData...), nil
	case tensor.Int64:
		if len(tp.Int64Data) == 0 {
			if err := wrongField(); err != nil {
				return nil, err
			}
		}
		if err := count("int64_data", len(tp.Int64Data)); err != nil {
			return nil, err
		}
		return append(make([]int64, 0, n), tp.Int64Data...), nil
	case tensor.Uint32, tensor.Uint64:
		if len(tp.Uint64Data) == 0 {
			if err := wrongField(); err != nil {
				return nil, err
			}
		}
		if err := count("uint64_data", len(tp.Uint64Data)); err != nil {
			return nil, err
		}
		if dt == tensor.Uint64 {
			return append(make([]uint64, 0, n), tp.Uint64Data...), nil
		}
		out := make([]uint32, n)
		for i, v := range tp.Uint64Data {
			if v > math.MaxUint32 {
				return nil, fmt.Errorf("uint64_data value %d out of range for uint32", v)
			}
			out[i] = uint32(v)
		}
		return out, nil
	case tensor.String:
		if len(tp.StringData) == 0 {
			if err := wrongField(); err != nil {
				return nil, err
			}
		}
		if err := count("string_data", len(tp.StringData)); err != nil {
			return nil, err
		}
		out := make([]string, n)
		for i, s := range tp.StringData {
			out[i] = string(s)
		}
		return out, nil
	}
	// The int32_data family.
	if len(tp.Int32Data) == 0 {
		if err := wrongField(); err != nil {
			return nil, err
		}
	}
	switch dt {
	case tensor.Int32:
		if err := count("int32_data", len(tp.Int32Data)); err != nil {
			return nil, err
		}
		return append(make([]int32, 0, n), tp.Int32Data...), nil
	case tensor.Int8:
		if err := i32(math.MinInt8, math.MaxInt8); err != nil {
			return nil, err
		}
		out := make([]int8, n)
		for i, v := range tp.Int32Data {
			out[i] = int8(v)
		}
		return out, nil
	case tensor.Uint8:
		if err := i32(0, math.MaxUint8); err != nil {
			return nil, err
		}
		out := make([]uint8, n)
		for i, v := range tp.Int32Data {
			out[i] = uint8(v)
		}
		return out, nil
	case tensor.Int16:
		if err := i32(math.MinInt16, math.MaxInt16); err != nil {
			return nil, err
		}
		out := make([]int16, n)
		for i, v := range tp.Int32Data {
			out[i] = int16(v)
		}
		return out, nil
	case tensor.Uint16:
		if err := i32(0, math.MaxUint16); err != nil {
			return nil, err
		}
		out := make([]uint16, n)
		for i, v := range tp.Int32Data {
			out[i] = uint16(v)
		}
		return out, nil
	case tensor.Float16:
		if err := i32(0, math.MaxUint16); err != nil {
			return nil, err
		}
		out := make([]float16.Float16, n)
		for i, v := range tp.Int32Data {
			out[i] = float16.Frombits(uint16(v))
		}
		return out, nil
	case tensor.Bool:
		if err := i32(0, 1); err != nil {
			return nil, err
		}
		out := make([]bool, n)
		for i, v := range tp.Int32Data {
			out[i] = v != 0
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported dtype %v", dt)
}

// readExternal reads want bytes of external data. The location must stay
// inside dir, also after symlinks are resolved, so that a model cannot make
// qtool read arbitrary files.
func readExternal(tp *onnxpb.TensorProto, dir string, want int64, ext *[]string) ([]byte, error) {
	var location string
	offset, length := int64(0), int64(-1)
	seen := map[string]bool{}
	for _, kv := range tp.ExternalData {
		k, v := kv.GetKey(), kv.GetValue()
		if seen[k] {
			return nil, fmt.Errorf("external data key %q given twice", k)
		}
		seen[k] = true
		switch k {
		case "location":
			location = v
		case "offset", "length":
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil || x < 0 {
				return nil, fmt.Errorf("external data %s %q is not a non-negative integer", k, v)
			}
			if k == "offset" {
				offset = x
			} else {
				length = x
			}
		case "checksum":
			// A SHA-1 the spec makes optional; the size checks below are what
			// protect us, and recomputing it would read the file twice.
		default:
			return nil, fmt.Errorf("unknown external data key %q", k)
		}
	}
	if location == "" {
		return nil, errors.New("external data without a location")
	}
	if dir == "" {
		return nil, fmt.Errorf("external data %q: no model folder to resolve it against", location)
	}
	if filepath.IsAbs(location) || strings.HasPrefix(location, "/") || strings.HasPrefix(location, `\`) {
		return nil, fmt.Errorf("external data location %q is absolute; it must be relative to the model's folder", location)
	}
	clean := filepath.Clean(filepath.FromSlash(location))
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) || clean == "." {
		return nil, fmt.Errorf("external data location %q escapes the model's folder", location)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("external data %q: model folder: %v", location, err)
	}
	realDir, err = filepath.Abs(realDir)
	if err != nil {
		return nil, err
	}
	full := filepath.Join(dir, clean)
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("external data file %q does not exist", location)
		}
		return nil, fmt.Errorf("external data %q: %v", location, err)
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return nil, err
	}
	if rel, err := filepath.Rel(realDir, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("external data location %q resolves outside the model's folder", location)
	}
	f, err := os.Open(real)
	if err != nil {
		return nil, fmt.Errorf("external data %q: %v", location, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("external data %q: %v", location, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("external data %q is not a regular file", location)
	}
	size := st.Size()
	if offset > size {
		return nil, fmt.Errorf("external data %q: offset %d beyond the file's %d bytes", location, offset, size)
	}
	if length < 0 {
		length = size - offset
	}
	if length > size-offset {
		return nil, fmt.Errorf("external data %q: offset %d + length %d beyond the file's %d bytes", location, offset, length, size)
	}
	if length != want {
		return nil, fmt.Errorf("external data %q has %d bytes, the tensor needs %d", location, length, want)
	}
	buf := make([]byte, length)
	if _, err := f.ReadAt(buf, offset); err != nil && !(errors.Is(err, io.EOF) && length == 0) {
		return nil, fmt.Errorf("external data %q: %v", location, err)
	}
	if ext != nil {
		found := false
		for _, e := range *ext {
			if e == location {
				found = true
			}
		}
		if !found {
			*ext = append(*ext, location)
		}
	}
	return buf, nil
}

// TensorToProto converts a tensor to a TensorProto with its data in raw_data
// (little-endian), or string_data for strings.
func TensorToProto(name string, t *tensor.Tensor) (*onnxpb.TensorProto, error) {
	if t == nil {
		return nil, fmt.Errorf("tensor %q is nil", name)
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("tensor %q: %v", name, err)
	}
	tp := &onnxpb.TensorProto{DataType: proto.Int32(int32(t.DType))}
	if name != "" {
		tp.Name = proto.String(name)
	}
	tp.Dims = make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		tp.Dims[i] = int64(d)
	}
	if t.DType == tensor.String {
		for _, s := range t.Strings() {
			tp.StringData = append(tp.StringData, []byte(s))
		}
		return tp, nil
	}
	raw, err := tensor.EncodeLE(t)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %v", name, err)
	}
	tp.RawData = raw
	return tp, nil
}
