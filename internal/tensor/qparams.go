package tensor

import (
	"errors"
	"fmt"
	"math"
)

// QScheme says how a quantized tensor maps integers back to reals.
type QScheme int

const (
	PerTensorAffine QScheme = iota
	PerTensorSymmetric
	PerChannelAffine
	PerChannelSymmetric
	// PerChannelFloatQParams has float zero points (PyTorch's
	// per_channel_affine_float_qparams, used for embedding tables). Only
	// the function PerChannelAffineFloatQParams produces its qparams.
	PerChannelFloatQParams
)

var qschemeNames = [...]string{"per_tensor_affine", "per_tensor_symmetric", "per_channel_affine", "per_channel_symmetric", "per_channel_affine_float_qparams"}

func (s QScheme) String() string {
	if s >= 0 && int(s) < len(qschemeNames) {
		return qschemeNames[s]
	}
	return fmt.Sprintf("qscheme(%d)", int(s))
}

// PerChannel reports the per-channel schemes.
func (s QScheme) PerChannel() bool {
	return s == PerChannelAffine || s == PerChannelSymmetric || s == PerChannelFloatQParams
}

// Symmetric reports the symmetric schemes.
func (s QScheme) Symmetric() bool { return s == PerTensorSymmetric || s == PerChannelSymmetric }

// QParamsOpts configures ChooseQParams the way PyTorch's observer
// constructor arguments do. DType is the quantized storage type: Uint8 is
// torch.quint8, Int8 torch.qint8, Int32 torch.qint32. Uint16 and Int16 are
// extensions for ONNX (PyTorch 1.13 has no such quantized types); they follow
// the same formulas with their full ranges.
type QParamsOpts struct {
	DType              DType
	Scheme             QScheme
	QuantMin, QuantMax int32
	HasRange           bool // QuantMin/QuantMax set explicitly
	ReduceRange        bool
	Eps                float32 // 0 means float32 machine epsilon (2^-23), as torch.finfo(torch.float32).eps
}

// Float32Eps is torch.finfo(torch.float32).eps, the default observer eps.
const Float32Eps = float32(1.1920928955078125e-07)

// ErrEmptyRange is returned (wrapped) by ChooseQParams when min is +Inf and
// max is -Inf: the initial state of an observer that saw no data. PyTorch
// warns and returns scale 1, zero point 0 there; callers that want that
// behaviour test for it with errors.Is.
var ErrEmptyRange = errors.New("empty range (observer saw no data)")

// QuantRange returns the integer range that qparams are chosen for:
// PyTorch's calculate_qmin_qmax plus the validation the observer constructor
// does (_validate_qmin_qmax and the range-length asserts).
func QuantRange(o QParamsOpts) (qmin, qmax int32, err error) {
	if o.HasRange {
		if !(o.QuantMin <= 0 && 0 <= o.QuantMax) {
			return 0, 0, fmt.Errorf("quantization range [%d, %d] must include 0", o.QuantMin, o.QuantMax)
		}
		if o.QuantMin >= o.QuantMax {
			return 0, 0, fmt.Errorf("quantization range [%d, %d]: qmin must be less than qmax", o.QuantMin, o.QuantMax)
		}
		n := int64(o.QuantMax) - int64(o.QuantMin) + 1
		switch o.DType {
		case Int8:
			if n > 256 {
				return 0, 0, fmt.Errorf("quantization range [%d, %d] exceeds 256 values for qint8", o.QuantMin, o.QuantMax)
			}
		case Int32:
			// PyTorch 1.13 asserts 0 < len <= 2**31 for qint32 custom ranges,
			// so the full int32 range cannot be given explicitly.
			if n > 1<<31 {
				return 0, 0, fmt.Errorf("quantization range [%d, %d] exceeds 2^31 values for qint32", o.QuantMin, o.QuantMax)
			}
		case Uint8, Uint16, Int16:
		default:
			return 0, 0, fmt.Errorf("cannot choose qparams for dtype %v", o.DType)
		}
		// Like PyTorch, a quint8 range is not checked against 0..255 here
		// (quantizing with a zero point outside the storage type fails later).
		qmin, qmax = o.QuantMin, o.QuantMax
		if o.ReduceRange {
			qmin, qmax = floorDiv2(qmin), floorDiv2(qmax)
		}
		return qmin, qmax, nil
	}
	switch o.DType {
	case Int8:
		if o.ReduceRange {
			return -64, 63, nil
		}
		return -128, 127, nil
	case Uint8:
		if o.ReduceRange {
			return 0, 127, nil
		}
		return 0, 255, nil
	case Int32:
		// reduce_range is ignored for qint32, as in PyTorch.
		return math.MinInt32, math.MaxInt32, nil
	case Uint16:
		if o.ReduceRange {
			return 0, 32767, nil
		}
		return 0, 65535, nil
	case Int16:
		if o.ReduceRange {
			return -16384, 16383, nil
		}
		return -32768, 32767, nil
	}
	return 0, 0, fmt.Errorf("cannot choose qparams for dtype %v", o.DType)
}

func storageRange(dt DType) (lo, hi int64) {
	switch dt {
	case Uint8:
		return 0, 255
	case Int8:
		return -128, 127
	case Uint16:
		return 0, 65535
	case Int16:
		return -32768, 32767
	case Int32:
		return math.MinInt32, math.MaxInt32
	}
	return 0, -1
}

// floorDiv2 is Python's x // 2.
func floorDiv2(x int32) int32 { return int32(math.Floor(float64(x) / 2)) }

func (o QParamsOpts) eps() float32 {
	if o.Eps == 0 {
		return Float32Eps
	}
	return o.Eps
}

func checkMinMax(mn, mx float32) error {
	if math.IsInf(float64(mn), 1) && math.IsInf(float64(mx), -1) {
		return ErrEmptyRange
	}
	if mn != mn || mx != mx {
		return fmt.Errorf("qparams: range [%v, %v] contains NaN", mn, mx)
	}
	if math.IsInf(float64(mn), 0) || math.IsInf(float64(mx), 0) {
		return fmt.Errorf("qparams: range [%v, %v] is not finite", mn, mx)
	}
	if mn > mx {
		return fmt.Errorf("qparams: min %v is greater than max %v", mn, mx)
	}
	return nil
}

// roundToInt32x86 is torch.round (half to even) followed by .to(torch.int)
// on x86: a value outside int32 converts to 0x80000000 (cvttss2si's
// "integer indefinite"), which is what PyTorch 1.13 produces for qint32
// ranges where min/scale is about -2^32.
func roundToInt32x86(v float32) int32 {
	r := math.RoundToEven(float64(v))
	if r != r || r >= 1<<31 || r < -(1<<31) {
		return math.MinInt32
	}
	return int32(r)
}

// ChooseQParams returns the scale and zero point PyTorch 1.13's
// UniformQuantizationObserverBase._calculate_qparams returns for the range
// [min, max], bit for bit: every step is done in float32 in the order torch
// evaluates its float32 tensors, and Python scalars are converted to float32
// where torch wraps them (float(qmax - qmin) becomes a float32 divisor).
// A NaN or infinite bound, or min > max, is an error.
func ChooseQParams(min, max float32, o QParamsOpts) (scale float32, zeroPoint int32, err error) {
	if o.Scheme == PerChannelFloatQParams {
		return 0, 0, errors.New("qparams: per_channel_affine_float_qparams has float zero points: use PerChannelAffineFloatQParams")
	}
	if o.Scheme < PerTensorAffine || o.Scheme > PerChannelSymmetric {
		return 0, 0, fmt.Errorf("qparams: unknown scheme %v", o.Scheme)
	}
	qmin, qmax, err := QuantRange(o)
	if err != nil {
		return 0, 0, err
	}
	if err := checkMinMax(min, max); err != nil {
		return 0, 0, err
	}
	scale, zeroPoint = chooseQParams(min, max, qmin, qmax, o)
	return scale, zeroPoint, nil
}

// chooseQParams assumes validated inputs.
func chooseQParams(mn, mx float32, qmin, qmax int32, o QParamsOpts) (float32, int32) {
	minNeg := mn
	if minNeg > 0 {
		minNeg = 0
	}
	maxPos := mx
	if maxPos < 0 {
		maxPos = 0
	}
	eps := o.eps()
	span := float64(int64(qmax) - int64(qmin)) // Python int, exact
	if o.Scheme.Symmetric() {
		if -minNeg > maxPos {
			maxPos = -minNeg
		}
		// max_val_pos / (float(quant_max - quant_min) / 2): the halving is a
		// Python double division; the quotient is wrapped as a float32 scalar.
		scale := maxPos / float32(span/2)
		if scale < eps {
			scale = eps
		}
		var zp int32
		switch o.DType {
		case Uint8, Uint16:
			if o.HasRange {
				zp = int32(math.Floor((float64(qmin) + float64(qmax)) / 2))
			} else if o.DType == Uint8 {
				zp = 128
			} else {
				zp = 32768
			}
		}
		return scale, zp
	}
	scale := (maxPos - minNeg) / float32(span)
	if scale < eps {
		scale = eps
	}
	zp := qmin - roundToInt32x86(minNeg/scale) // int32 arithmetic, wraps as torch's does
	if zp < qmin {
		zp = qmin
	}
	if zp > qmax {
		zp = qmax
	}
	return scale, zp
}

// ChooseQParamsPerChannel applies ChooseQParams to each channel's range.
func ChooseQParamsPerChannel(mins, maxs []float32, o QParamsOpts) ([]float32, []int32, error) {
	if len(mins) != len(maxs) {
		return nil, nil, fmt.Errorf("qparams: %d channel minima but %d maxima", len(mins), len(maxs))
	}
	if o.Scheme == PerChannelFloatQParams {
		return nil, nil, errors.New("qparams: per_channel_affine_float_qparams has float zero points: use PerChannelAffineFloatQParams")
	}
	if o.Scheme < PerTensorAffine || o.Scheme > PerChannelSymmetric {
		return nil, nil, fmt.Errorf("qparams: unknown scheme %v", o.Scheme)
	}
	qmin, qmax, err := QuantRange(o)
	if err != nil {
		return nil, nil, err
	}
	scales := make([]float32, len(mins))
	zps := make([]int32, len(mins))
	for i := range mins {
		if err := checkMinMax(mins[i], maxs[i]); err != nil {
			return nil, nil, fmt.Errorf("channel %d: %w", i, err)
		}
		scales[i], zps[i] = chooseQParams(mins[i], maxs[i], qmin, qmax, o)
	}
	return scales, zps, nil
}

// PerChannelAffineFloatQParams is _calculate_qparams for
// per_channel_affine_float_qparams: scale = (max - min) / (qmax - qmin),
// replaced by 1 where it is not above eps, and the float zero point
// -min / scale. The range is not widened to include 0.
func PerChannelAffineFloatQParams(mins, maxs []float32, o QParamsOpts) (scales, zeroPoints []float32, err error) {
	if len(mins) != len(maxs) {
		return nil, nil, fmt.Errorf("qparams: %d channel minima but %d maxima", len(mins), len(maxs))
	}
	qmin, qmax, err := QuantRange(o)
	if err != nil {
		return nil, nil, err
	}
	span := float32(float64(int64(qmax) - int64(qmin)))
	eps := o.eps()
	scales = make([]float32, len(mins))
	zeroPoints = make([]float32, len(mins))
	for i := range mins {
		if err := checkMinMax(mins[i], maxs[i]); err != nil {
			return nil, nil, fmt.Errorf("channel %d: %w", i, err)
		}
		s := (maxs[i] - mins[i]) / span
		if !(s > eps) {
			s = 1
		}
		scales[i] = s
		zeroPoints[i] = -mins[i] / s
	}
	return scales, zeroPoints, nil
}
