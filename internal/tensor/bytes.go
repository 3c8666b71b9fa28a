package tensor

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/x448/float16"
)

// The little-endian element encoding below is the one ONNX raw_data and
// NumPy's '<' arrays share, so the model and npy readers use one codec.

// EncodeLE returns the tensor's elements as little-endian bytes (bool as one
// byte 0 or 1). Strings have no fixed-size encoding and give an error.
func EncodeLE(t *Tensor) ([]byte, error) {
	sz := t.DType.Size()
	if sz == 0 {
		return nil, fmt.Errorf("cannot encode %v elements as bytes", t.DType)
	}
	b := make([]byte, t.Len()*sz)
	le := binary.LittleEndian
	switch d := t.Data.(type) {
	case []float32:
		for i, v := range d {
			le.PutUint32(b[4*i:], math.Float32bits(v))
		}
	case []float64:
		for i, v := range d {
			le.PutUint64(b[8*i:], math.Float64bits(v))
		}
	case []float16.Float16:
		for i, v := range d {
			le.PutUint16(b[2*i:], v.Bits())
		}
	case []int8:
		for i, v := range d {
			b[i] = byte(v)
		}
	case []uint8:
		copy(b, d)
	case []bool:
		for i, v := range d {
			if v {
				b[i] = 1
			}
		}
	case []int16:
		for i, v := range d {
			le.PutUint16(b[2*i:], uint16(v))
		}
	case []uint16:
		for i, v := range d {
			le.PutUint16(b[2*i:], v)
		}
	case []int32:
		for i, v := range d {
			le.PutUint32(b[4*i:], uint32(v))
		}
	case []uint32:
		for i, v := range d {
			le.PutUint32(b[4*i:], v)
		}
	case []int64:
		for i, v := range d {
			le.PutUint64(b[8*i:], uint64(v))
		}
	case []uint64:
		for i, v := range d {
			le.PutUint64(b[8*i:], v)
		}
	default:
		return nil, fmt.Errorf("cannot encode %T as bytes", t.Data)
	}
	return b, nil
}

// DecodeLE decodes n little-endian elements of dt from b (which must hold at
// least n*dt.Size() bytes) into a new slice of dt's element type. A bool
// byte is true when it is not zero.
func DecodeLE(dt DType, b []byte, n int) (any, error) {
	if dt.Size() == 0 {
		return nil, fmt.Errorf("cannot decode %v elements from bytes", dt)
	}
	if len(b) < n*dt.Size() {
		return nil, fmt.Errorf("%d bytes hold fewer than %d %v elements", len(b), n, dt)
	}
	le := binary.LittleEndian
	switch dt {
	case Float32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
		return out, nil
	case Float64:
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
		return out, nil
	case Float16:
		out := make([]float16.Float16, n)
		for i := range out {
			out[i] = float16.Frombits(le.Uint16(b[2*i:]))
		}
		return out, nil
	case Int8:
		out := make([]int8, n)
		for i := range out {
			out[i] = int8(b[i])
		}
		return out, nil
	case Uint8:
		return append(make([]uint8, 0, n), b[:n]...), nil
	case Bool:
		out := make([]bool, n)
		for i := range out {
			out[i] = b[i] != 0
		}
		return out, nil
	case Int16:
		out := make([]int16, n)
		for i := range out {
			out[i] = int16(le.Uint16(b[2*i:]))
		}
		return out, nil
	case Uint16:
		out := make([]uint16, n)
		for i := range out {
			out[i] = le.Uint16(b[2*i:])
		}
		return out, nil
	case Int32:
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(le.Uint32(b[4*i:]))
		}
		return out, nil
	case Uint32:
		out := make([]uint32, n)
		for i := range out {
			out[i] = le.Uint32(b[4*i:])
		}
		return out, nil
	case Int64:
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(le.Uint64(b[8*i:]))
		}
		return out, nil
	case Uint64:
		out := make([]uint64, n)
		for i := range out {
			out[i] = le.Uint64(b[8*i:])
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot decode %v elements from bytes", dt)
}
