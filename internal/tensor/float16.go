package tensor

import (
	"fmt"

	"github.com/x448/float16"
)

// ToFloat16 converts a float32 tensor to float16 with round-half-to-even
// (overflow gives ±Inf, tiny values subnormals or ±0), as torch's .half().
func ToFloat16(t *Tensor) (*Tensor, error) {
	if t == nil || t.DType != Float32 {
		return nil, fmt.Errorf("to float16: input must be float32")
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	out := MustNew(Float16, t.Shape)
	d := out.F16()
	for i, v := range t.F32() {
		d[i] = float16.Fromfloat32(v)
	}
	return out, nil
}

// FromFloat16 converts a float16 tensor to float32 (exact).
func FromFloat16(t *Tensor) (*Tensor, error) {
	if t == nil || t.DType != Float16 {
		return nil, fmt.Errorf("from float16: input must be float16")
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	out := MustNew(Float32, t.Shape)
	d := out.F32()
	for i, v := range t.F16() {
		d[i] = v.Float32()
	}
	return out, nil
}
