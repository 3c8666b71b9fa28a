package observe

import (
	"errors"
	"fmt"
	"math"
)

// FakeQuantize is PyTorch's FakeQuantize module: Forward observes the batch
// (when ObserverEnabled), refreshes Scales/ZeroPoints from the observer, and
// (when FakeQuantEnabled) returns the batch quantized and dequantized with
// them; otherwise the input unchanged. Per-channel when the observer's
// scheme is, along its Config.Axis.
type FakeQuantize struct {
	Observer         Observer
	ObserverEnabled  bool
	FakeQuantEnabled bool
	Scales           []float32
	ZeroPoints       []int32
	qmin, qmax       int32
}

// NewFakeQuantize wraps an observer, with PyTorch's initial scale 1 and zero
// point 0 and both switches on.
func NewFakeQuantize(obs Observer) (*FakeQuantize, error) {
	qmin, qmax, err := obs.Config().QuantRange()
	if err != nil {
		return nil, err
	}
	return &FakeQuantize{Observer: obs, ObserverEnabled: true, FakeQuantEnabled: true,
		Scales: []float32{1}, ZeroPoints: []int32{0}, qmin: qmin, qmax: qmax}, nil
}

// QuantRange is the clamp range of the fake quantization.
func (f *FakeQuantize) QuantRange() (qmin, qmax int32) { return f.qmin, f.qmax }

// Forward runs one batch; out (len(x), may alias x) receives the result, or
// a new slice is allocated when out is nil.
func (f *FakeQuantize) Forward(x []float32, shape []int, out []float32) ([]float32, error) {
	if err := checkBatch(x, shape); err != nil {
		return nil, err
	}
	if out == nil {
		out = make([]float32, len(x))
	}
	if len(out) != len(x) {
		return nil, fmt.Errorf("fake quantize: output has %d elements, input %d", len(out), len(x))
	}
	if f.ObserverEnabled {
		if err := f.Observer.Observe(x, shape); err != nil {
			return nil, err
		}
		s, z, err := f.Observer.QParams()
		if err != nil && !errors.Is(err, ErrEmpty) {
			return nil, err
		}
		f.Scales = append(f.Scales[:0], s...)
		f.ZeroPoints = append(f.ZeroPoints[:0], z...)
	}
	if !f.FakeQuantEnabled {
		copy(out, x)
		return out, nil
	}
	if f.Observer.Config().Scheme.PerChannel() {
		if err := FakeQuantizePerChannel(x, shape, f.Observer.Config().Axis, f.Scales, f.ZeroPoints, f.qmin, f.qmax, out); err != nil {
			return nil, err
		}
		return out, nil
	}
	if len(f.Scales) != 1 || len(f.ZeroPoints) != 1 {
		return nil, fmt.Errorf("fake quantize: per-tensor needs one scale, have %d", len(f.Scales))
	}
	FakeQuantizePerTensor(x, f.Scales[0], f.ZeroPoints[0], f.qmin, f.qmax, out)
	return out, nil
}

// fakeQuant is torch 1.13's CPU fake-quant kernel for one value:
//
//	qval = int64(zp + nearbyint(x * (1.0f/scale)))   // float32 sum
//	out  = (fmin(fmax(qval, qmin), qmax) - zp) * scale  // in double, stored as float
//
// nearbyint rounds half to even. A float32 out of int64 range converts to
// INT64_MIN as x86's cvttss2si does (torch relies on that conversion), so a
// huge positive x lands on qmin exactly as in torch.
func fakeQuant(x, inv, scale float32, zp int32, qmin, qmax float64) float32 {
	r := float32(math.RoundToEven(float64(float32(x * inv))))
	s := float32(float32(zp) + r)
	var q float64
	if s >= -(1<<63) && s < 1<<63 {
		q = float64(int64(s))
	} else {
		q = -(1 << 63)
	}
	q = math.Min(math.Max(q, qmin), qmax)
	return float32((q - float64(zp)) * float64(scale))
}

// FakeQuantizePerTensor is torch.fake_quantize_per_tensor_affine (with
// tensor qparams), bit for bit. out may alias x.
func FakeQuantizePerTensor(x []float32, scale float32, zeroPoint, qmin, qmax int32, out []float32) {
	inv := 1 / scale
	lo, hi := float64(qmin), float64(qmax)
	for i, v := range x {
		out[i] = fakeQuant(v, inv, scale, zeroPoint, lo, hi)
	}
}

// FakeQuantizePerChannel is torch.fake_quantize_per_channel_affine along
// axis of shape, bit for bit. out may alias x.
func FakeQuantizePerChannel(x []float32, shape []int, axis int, scales []float32, zeroPoints []int32, qmin, qmax int32, out []float32) error {
	if err := checkBatch(x, shape); err != nil {
		return err
	}
	if axis < 0 {
		axis += len(shape)
	}
	if axis < 0 || axis >= len(shape) {
		return fmt.Errorf("fake quantize: axis %d out of range for shape %v", axis, shape)
	}
	nc := shape[axis]
	if len(scales) != nc || len(zeroPoints) != nc {
		return fmt.Errorf("fake quantize: %d scales and %d zero points for %d channels", len(scales), len(zeroPoints), nc)
	}
	if qmin > qmax {
		return fmt.Errorf("fake quantize: quant_min %d > quant_max %d", qmin, qmax)
	}
	inner := 1
	for _, d := range shape[axis+1:] {
		inner *= d
	}
	lo, hi := float64(qmin), float64(qmax)
	for i := 0; i < len(x); {
		c := (i / inner) % nc
		s, z := scales[c], zeroPoints[c]
		inv := 1 / s
		end := i + inner
		for ; i < end; i++ {
			out[i] = fakeQuant(x[i], inv, s, z, lo, hi)
		}
	}
	return nil
}
