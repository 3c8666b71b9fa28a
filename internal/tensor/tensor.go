package tensor

import (
	"errors"
	"fmt"

	"github.com/x448/float16"
)

// MaxElements bounds every tensor qtool allocates, so that a shape read from an
// untrusted file cannot ask for an absurd allocation (2^32 elements is 16 GiB
// of float32: far beyond any CNN or RNN activation or weight).
const MaxElements = 1 << 32

// ErrTooLarge is returned when a shape has more than MaxElements elements.
var ErrTooLarge = errors.New("tensor too large")

// Tensor is a dense, row-major, contiguous tensor. Data holds a slice whose
// element type matches DType:
//
//	Float32 []float32   Float64 []float64   Float16 []float16.Float16
//	Int8 []int8  Uint8 []uint8  Int16 []int16  Uint16 []uint16
//	Int32 []int32  Uint32 []uint32  Int64 []int64  Uint64 []uint64
//	Bool []bool  String []string
//
// A scalar has an empty (non-nil or nil) Shape and one element.
type Tensor struct {
	DType DType
	Shape []int
	Data  any
}

// NumElements returns the product of dims, or an error if a dim is negative
// or the product exceeds MaxElements.
func NumElements(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in shape %v", d, shape)
		}
		if d == 0 {
			n = 0
			continue
		}
		if n > 0 && d > MaxElements/n {
			return 0, fmt.Errorf("%w: shape %v has more than %d elements", ErrTooLarge, shape, MaxElements)
		}
		if n > 0 {
			n *= d
		}
	}
	// A zero dim after a huge product must still be checked for the other dims.
	if n == 0 {
		p := 1
		for _, d := range shape {
			if d == 0 {
				continue
			}
			if d > MaxElements/p {
				return 0, fmt.Errorf("%w: shape %v has more than %d elements", ErrTooLarge, shape, MaxElements)
			}
			p *= d
		}
	}
	return n, nil
}

// New allocates a zeroed tensor. It returns an error for unsupported dtypes,
// negative dims or shapes over MaxElements.
func New(dt DType, shape []int) (*Tensor, error) {
	n, err := NumElements(shape)
	if err != nil {
		return nil, err
	}
	data, err := makeSlice(dt, n)
	if err != nil {
		return nil, err
	}
	return &Tensor{DType: dt, Shape: append([]int(nil), shape...), Data: data}, nil
}

// MustNew is New for shapes the caller has already validated.
func MustNew(dt DType, shape []int) *Tensor {
	t, err := New(dt, shape)
	if err != nil {
		panic(err)
	}
	return t
}

func makeSlice(dt DType, n int) (any, error) {
	switch dt {
	case Float32:
		return make([]float32, n), nil
	case Float64:
		return make([]float64, n), nil
	case Float16:
		return make([]float16.Float16, n), nil
	case Int8:
		return make([]int8, n), nil
	case Uint8:
		return make([]uint8, n), nil
	case Int16:
		return make([]int16, n), nil
	case Uint16:
		return make([]uint16, n), nil
	case Int32:
		return make([]int32, n), nil
	case Uint32:
		return make([]uint32, n), nil
	case Int64:
		return make([]int64, n), nil
	case Uint64:
		return make([]uint64, n), nil
	case Bool:
		return make([]bool, n), nil
	case String:
		return make([]string, n), nil
	}
	return nil, fmt.Errorf("unsupported dtype %v", dt)
}

// FromFloat32 wraps data (not copied) with the given shape.
func FromFloat32(shape []int, data []float32) *Tensor {
	return &Tensor{DType: Float32, Shape: append([]int(nil), shape...), Data: data}
}

// FromInt64 wraps data (not copied) with the given shape.
func FromInt64(shape []int, data []int64) *Tensor {
	return &Tensor{DType: Int64, Shape: append([]int(nil), shape...), Data: data}
}

// Scalar returns a 0-d float32 tensor.
func Scalar(v float32) *Tensor { return &Tensor{DType: Float32, Shape: []int{}, Data: []float32{v}} }

// Len is the number of elements actually held.
func (t *Tensor) Len() int {
	switch d := t.Data.(type) {
	case []float32:
		return len(d)
	case []float64:
		return len(d)
	case []float16.Float16:
		return len(d)
	case []int8:
		return len(d)
	case []uint8:
		return len(d)
	case []int16:
		return len(d)
	case []uint16:
		return len(d)
	case []int32:
		return len(d)
	case []uint32:
		return len(d)
	case []int64:
		return len(d)
	case []uint64:
		return len(d)
	case []bool:
		return len(d)
	case []string:
		return len(d)
	}
	return 0
}

// Rank is len(Shape).
func (t *Tensor) Rank() int { return len(t.Shape) }

// Validate checks that Data's type matches DType and its length the shape.
func (t *Tensor) Validate() error {
	n, err := NumElements(t.Shape)
	if err != nil {
		return err
	}
	want, err := makeSlice(t.DType, 0)
	if err != nil {
		return err
	}
	if fmt.Sprintf("%T", want) != fmt.Sprintf("%T", t.Data) {
		return fmt.Errorf("tensor data is %T, dtype says %v", t.Data, t.DType)
	}
	if t.Len() != n {
		return fmt.Errorf("tensor holds %d elements, shape %v needs %d", t.Len(), t.Shape, n)
	}
	return nil
}

// Typed accessors: they panic on a dtype mismatch, which is a programming
// error (kernels check dtypes before they run).
func (t *Tensor) F32() []float32         { return t.Data.([]float32) }
func (t *Tensor) F64() []float64         { return t.Data.([]float64) }
func (t *Tensor) F16() []float16.Float16 { return t.Data.([]float16.Float16) }
func (t *Tensor) I8() []int8             { return t.Data.([]int8) }
func (t *Tensor) U8() []uint8            { return t.Data.([]uint8) }
func (t *Tensor) I16() []int16           { return t.Data.([]int16) }
func (t *Tensor) U16() []uint16          { return t.Data.([]uint16) }
func (t *Tensor) I32() []int32           { return t.Data.([]int32) }
func (t *Tensor) U32() []uint32          { return t.Data.([]uint32) }
func (t *Tensor) I64() []int64           { return t.Data.([]int64) }
func (t *Tensor) U64() []uint64          { return t.Data.([]uint64) }
func (t *Tensor) Bools() []bool          { return t.Data.([]bool) }
func (t *Tensor) Strings() []string      { return t.Data.([]string) }

// Clone deep-copies the tensor.
func (t *Tensor) Clone() *Tensor {
	c := &Tensor{DType: t.DType, Shape: append([]int(nil), t.Shape...)}
	switch d := t.Data.(type) {
	case []float32:
		c.Data = append([]float32(nil), d...)
	case []float64:
		c.Data = append([]float64(nil), d...)
	case []float16.Float16:
		c.Data = append([]float16.Float16(nil), d...)
	case []int8:
		c.Data = append([]int8(nil), d...)
	case []uint8:
		c.Data = append([]uint8(nil), d...)
	case []int16:
		c.Data = append([]int16(nil), d...)
	case []uint16:
		c.Data = append([]uint16(nil), d...)
	case []int32:
		c.Data = append([]int32(nil), d...)
	case []uint32:
		c.Data = append([]uint32(nil), d...)
	case []int64:
		c.Data = append([]int64(nil), d...)
	case []uint64:
		c.Data = append([]uint64(nil), d...)
	case []bool:
		c.Data = append([]bool(nil), d...)
	case []string:
		c.Data = append([]string(nil), d...)
	}
	return c
}

// AsFloat64 returns the elements converted to float64 (for tests, reports and
// comparisons; not for hot paths). Strings give an error.
func (t *Tensor) AsFloat64() ([]float64, error) {
	n := t.Len()
	out := make([]float64, n)
	switch d := t.Data.(type) {
	case []float32:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []float64:
		copy(out, d)
	case []float16.Float16:
		for i, v := range d {
			out[i] = float64(v.Float32())
		}
	case []int8:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []uint8:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []int16:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []uint16:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []int32:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []uint32:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []int64:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []uint64:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []bool:
		for i, v := range d {
			if v {
				out[i] = 1
			}
		}
	default:
		return nil, fmt.Errorf("cannot convert %v to float64", t.DType)
	}
	return out, nil
}

// SameShape reports whether two shapes are equal.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Strides returns row-major strides in elements.
func Strides(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// String summarises the tensor for errors and debugging.
func (t *Tensor) String() string {
	return fmt.Sprintf("%v%v", t.DType, t.Shape)
}
