package tensor

import (
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// QTensor is a quantized tensor: integer data plus the affine map back to
// reals, real = (q - zero_point) * scale, per tensor or per channel along
// Axis. Data is dense and row-major like every Tensor: operations that are
// views in PyTorch (transpose, expand, slicing...) return copies here, with
// the same values and qparams PyTorch's views have.
type QTensor struct {
	Data       *Tensor // Uint8 (quint8), Int8 (qint8), Int32 (qint32), Uint16 or Int16
	Scheme     QScheme
	Scales     []float32 // one per channel; one for the per-tensor schemes
	ZeroPoints []int32   // same length as Scales
	Axis       int       // channel axis of the per-channel schemes
}

// ErrPerChannel is returned (wrapped) by operations PyTorch only allows on
// per-tensor quantized tensors.
var ErrPerChannel = errors.New("operation needs a per-tensor quantized tensor")

func quantDType(dt DType) bool {
	switch dt {
	case Uint8, Int8, Int32, Uint16, Int16:
		return true
	}
	return false
}

func checkQParam(dt DType, scale float32, zp int32) error {
	if !(scale > 0) || math.IsInf(float64(scale), 0) {
		return fmt.Errorf("scale %v must be positive and finite", scale)
	}
	lo, hi := storageRange(dt)
	if int64(zp) < lo || int64(zp) > hi {
		return fmt.Errorf("zero point %d is out of range for %v", zp, dt)
	}
	return nil
}

func normAxis(axis, rank int) (int, error) {
	if axis < -rank || axis >= rank {
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, rank)
	}
	if axis < 0 {
		axis += rank
	}
	return axis, nil
}

// NewQTensor wraps integer data with qparams (PyTorch's
// _make_per_tensor_quantized_tensor / _make_per_channel_quantized_tensor),
// validating everything. data is not copied.
func NewQTensor(data *Tensor, scheme QScheme, scales []float32, zeroPoints []int32, axis int) (*QTensor, error) {
	if data == nil {
		return nil, errors.New("quantized tensor: nil data")
	}
	if !quantDType(data.DType) {
		return nil, fmt.Errorf("quantized tensor: dtype %v is not a quantized storage type", data.DType)
	}
	if err := data.Validate(); err != nil {
		return nil, fmt.Errorf("quantized tensor: %w", err)
	}
	if len(scales) != len(zeroPoints) {
		return nil, fmt.Errorf("quantized tensor: %d scales but %d zero points", len(scales), len(zeroPoints))
	}
	switch scheme {
	case PerTensorAffine, PerTensorSymmetric:
		if len(scales) != 1 {
			return nil, fmt.Errorf("quantized tensor: per-tensor scheme needs 1 scale, got %d", len(scales))
		}
		axis = 0
	case PerChannelAffine, PerChannelSymmetric:
		var err error
		if axis, err = normAxis(axis, data.Rank()); err != nil {
			return nil, fmt.Errorf("quantized tensor: %w", err)
		}
		if len(scales) != data.Shape[axis] {
			return nil, fmt.Errorf("quantized tensor: %d scales for %d channels on axis %d", len(scales), data.Shape[axis], axis)
		}
	default:
		return nil, fmt.Errorf("quantized tensor: unsupported scheme %v", scheme)
	}
	for i := range scales {
		if err := checkQParam(data.DType, scales[i], zeroPoints[i]); err != nil {
			return nil, fmt.Errorf("quantized tensor: channel %d: %w", i, err)
		}
	}
	return &QTensor{Data: data, Scheme: scheme, Scales: append([]float32(nil), scales...),
		ZeroPoints: append([]int32(nil), zeroPoints...), Axis: axis}, nil
}

func checkFloatInput(x *Tensor) error {
	if x == nil || x.DType != Float32 {
		return errors.New("quantize: input must be a float32 tensor")
	}
	return x.Validate()
}

// QuantizePerTensor is torch.quantize_per_tensor (rule RuleTorch) or ONNX
// QuantizeLinear with a scalar scale (RuleONNX).
func QuantizePerTensor(x *Tensor, scale float32, zeroPoint int32, dt DType, rule RoundingRule) (*QTensor, error) {
	if err := checkFloatInput(x); err != nil {
		return nil, err
	}
	if !quantDType(dt) {
		return nil, fmt.Errorf("quantize: %v is not a quantized storage type", dt)
	}
	if err := checkQParam(dt, scale, zeroPoint); err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	out, err := New(dt, x.Shape)
	if err != nil {
		return nil, err
	}
	quantizeRun(dt, out.Data, 0, x.F32(), scale, zeroPoint, rule)
	return &QTensor{Data: out, Scheme: PerTensorAffine, Scales: []float32{scale}, ZeroPoints: []int32{zeroPoint}}, nil
}

// outerInner splits shape around axis: the number of blocks before it and
// the number of contiguous elements after it.
func outerInner(shape []int, axis int) (outer, inner int) {
	outer, inner = 1, 1
	for i, d := range shape {
		if i < axis {
			outer *= d
		} else if i > axis {
			inner *= d
		}
	}
	return
}

// QuantizePerChannel is torch.quantize_per_channel (RuleTorch) or ONNX
// per-axis QuantizeLinear (RuleONNX).
func QuantizePerChannel(x *Tensor, scales []float32, zeroPoints []int32, axis int, dt DType, rule RoundingRule) (*QTensor, error) {
	if err := checkFloatInput(x); err != nil {
		return nil, err
	}
	if !quantDType(dt) {
		return nil, fmt.Errorf("quantize: %v is not a quantized storage type", dt)
	}
	ax, err := normAxis(axis, x.Rank())
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	c := x.Shape[ax]
	if len(scales) != c || len(zeroPoints) != c {
		return nil, fmt.Errorf("quantize: %d scales and %d zero points for %d channels", len(scales), len(zeroPoints), c)
	}
	for i := range scales {
		if err := checkQParam(dt, scales[i], zeroPoints[i]); err != nil {
			return nil, fmt.Errorf("quantize: channel %d: %w", i, err)
		}
	}
	out, err := New(dt, x.Shape)
	if err != nil {
		return nil, err
	}
	quantizeChannels(out.Data, x.F32(), x.Shape, ax, scales, zeroPoints, dt, rule)
	return &QTensor{Data: out, Scheme: PerChannelAffine, Scales: append([]float32(nil), scales...),
		ZeroPoints: append([]int32(nil), zeroPoints...), Axis: ax}, nil
}

func quantizeChannels(dst any, src []float32, shape []int, axis int, scales []float32, zps []int32, dt DType, rule RoundingRule) {
	outer, inner := outerInner(shape, axis)
	c := len(scales)
	if inner == 1 && c > 1 {
		// Channels are the last axis: runs of one element would cost a call
		// per element, so this path uses per-element qparams tables.
		quantizeLastAxis(dst, src, outer, scales, zps, dt, rule)
		return
	}
	off := 0
	for o := 0; o < outer; o++ {
		for ch := 0; ch < c; ch++ {
			quantizeRun(dt, dst, off, src[off:off+inner], scales[ch], zps[ch], rule)
			off += inner
		}
	}
}

func quantizeLastAxis(dst any, src []float32, rows int, scales []float32, zps []int32, dt DType, rule RoundingRule) {
	c := len(scales)
	lo, hi := storageRange(dt)
	switch d := dst.(type) {
	case []uint8:
		k := quant8LastAxisFast(d, src, scales, zps, int32(lo), int32(hi), rule, false)
		lastAxisGo(d[k:], src[k:], rows-k/c, scales, zps, int32(lo), int32(hi), rule)
		return
	case []int8:
		b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(d))), len(d))
		k := quant8LastAxisFast(b, src, scales, zps, int32(lo), int32(hi), rule, true)
		lastAxisGo(d[k:], src[k:], rows-k/c, scales, zps, int32(lo), int32(hi), rule)
		return
	case []uint16:
		lastAxisGo(d, src, rows, scales, zps, int32(lo), int32(hi), rule)
		return
	case []int16:
		lastAxisGo(d, src, rows, scales, zps, int32(lo), int32(hi), rule)
		return
	}
	// int32: one value at a time through the one-element run.
	for r := 0; r < rows; r++ {
		for ch := 0; ch < c; ch++ {
			i := r*c + ch
			quantizeRun(dt, dst, i, src[i:i+1], scales[ch], zps[ch], rule)
		}
	}
}

// lastAxisGo is quantTorch/quantONNX with per-element qparams (channels on
// the last axis), and the pure-Go twin of quant8LastAxisFast.
func lastAxisGo[T small](dst []T, src []float32, rows int, scales []float32, zps []int32, qmin, qmax int32, rule RoundingRule) {
	c := len(scales)
	mul := make([]float32, c)
	lo := make([]int64, c)
	hi := make([]int64, c)
	for ch := range scales {
		mul[ch] = 1 / scales[ch]
		lo[ch] = int64(qmin - zps[ch])
		hi[ch] = int64(qmax - zps[ch])
	}
	for r := 0; r < rows; r++ {
		s := src[r*c : r*c+c]
		d := dst[r*c : r*c+c]
		for ch, x := range s {
			var t float32
			var v int64
			if rule == RuleONNX {
				t = x / scales[ch]
				v = int64((t + magic) - magic)
				if t >= two63 {
					v = hi[ch]
				}
				if t != t {
					v = lo[ch]
				}
			} else {
				t = float32(x * mul[ch])
				v = int64((t + magic) - magic)
				if !(t < two63) {
					v = lo[ch]
				}
			}
			v = min(max(v, lo[ch]), hi[ch])
			d[ch] = T(int32(v) + zps[ch])
		}
	}
}

// Shape is the logical shape.
func (q *QTensor) Shape() []int { return q.Data.Shape }

// DType is the storage type.
func (q *QTensor) DType() DType { return q.Data.DType }

// PerChannel reports a per-channel scheme.
func (q *QTensor) PerChannel() bool { return q.Scheme.PerChannel() }

// Dequantize returns the float32 values (torch's dequantize()).
func (q *QTensor) Dequantize() *Tensor {
	out := MustNew(Float32, q.Data.Shape)
	q.DequantizeInto(out.F32())
	return out
}

// DequantizeInto writes the real values into dst (len = number of elements).
func (q *QTensor) DequantizeInto(dst []float32) {
	if !q.PerChannel() {
		dequantizeRun(dst, q.Data.Data, 0, q.Scales[0], q.ZeroPoints[0], false)
		return
	}
	outer, inner := outerInner(q.Data.Shape, q.Axis)
	c := len(q.Scales)
	if inner == 1 && c > 1 {
		dequantLastAxis(dst, q)
		return
	}
	off := 0
	for o := 0; o < outer; o++ {
		for ch := 0; ch < c; ch++ {
			dequantizeRun(dst[off:off+inner], q.Data.Data, off, q.Scales[ch], q.ZeroPoints[ch], true)
			off += inner
		}
	}
}

func dequantLastAxis(dst []float32, q *QTensor) {
	c := len(q.Scales)
	n := len(dst)
	switch s := q.Data.Data.(type) {
	case []uint8:
		k := dequant8LastAxisFast(dst, s, q.Scales, q.ZeroPoints, false)
		dst, s, n = dst[k:], s[k:], n-k
		tabs := make([][256]float32, c)
		for ch := range tabs {
			dequantTable(&tabs[ch], 0, q.Scales[ch], q.ZeroPoints[ch])
		}
		for r := 0; r < n; r += c {
			for ch, v := range s[r : r+c] {
				dst[r+ch] = tabs[ch][v]
			}
		}
	case []int8:
		k := dequant8LastAxisFast(dst, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)), q.Scales, q.ZeroPoints, true)
		dst, s, n = dst[k:], s[k:], n-k
		tabs := make([][256]float32, c)
		for ch := range tabs {
			dequantTable(&tabs[ch], -128, q.Scales[ch], q.ZeroPoints[ch])
		}
		for r := 0; r < n; r += c {
			for ch, v := range s[r : r+c] {
				dst[r+ch] = tabs[ch][uint8(v)^0x80]
			}
		}
	default:
		for i := 0; i < n; i++ {
			ch := i % c
			dequantizeRun(dst[i:i+1], q.Data.Data, i, q.Scales[ch], q.ZeroPoints[ch], true)
		}
	}
}

// IntRepr returns a copy of the integer data (torch's int_repr()).
func (q *QTensor) IntRepr() *Tensor { return q.Data.Clone() }

// QScale is q_scale(): an error for per-channel tensors.
func (q *QTensor) QScale() (float32, error) {
	if q.PerChannel() {
		return 0, fmt.Errorf("q_scale: %w", ErrPerChannel)
	}
	return q.Scales[0], nil
}

// QZeroPoint is q_zero_point(): an error for per-channel tensors.
func (q *QTensor) QZeroPoint() (int32, error) {
	if q.PerChannel() {
		return 0, fmt.Errorf("q_zero_point: %w", ErrPerChannel)
	}
	return q.ZeroPoints[0], nil
}

var errNotPerChannel = errors.New("operation needs a per-channel quantized tensor")

// QPerChannelScales is q_per_channel_scales().
func (q *QTensor) QPerChannelScales() ([]float32, error) {
	if !q.PerChannel() {
		return nil, errNotPerChannel
	}
	return append([]float32(nil), q.Scales...), nil
}

// QPerChannelZeroPoints is q_per_channel_zero_points().
func (q *QTensor) QPerChannelZeroPoints() ([]int32, error) {
	if !q.PerChannel() {
		return nil, errNotPerChannel
	}
	return append([]int32(nil), q.ZeroPoints...), nil
}

// QPerChannelAxis is q_per_channel_axis().
func (q *QTensor) QPerChannelAxis() (int, error) {
	if !q.PerChannel() {
		return 0, errNotPerChannel
	}
	return q.Axis, nil
}

// Equal is torch.equal on quantized tensors: same dtype, scheme, qparams,
// shape and integer values.
func (q *QTensor) Equal(o *QTensor) bool {
	if q.Data.DType != o.Data.DType || q.Scheme != o.Scheme || !SameShape(q.Data.Shape, o.Data.Shape) ||
		len(q.Scales) != len(o.Scales) || (q.PerChannel() && q.Axis != o.Axis) {
		return false
	}
	for i := range q.Scales {
		if q.Scales[i] != o.Scales[i] || q.ZeroPoints[i] != o.ZeroPoints[i] {
			return false
		}
	}
	return intsEqual(q.Data, o.Data)
}

func intsEqual(a, b *Tensor) bool {
	switch x := a.Data.(type) {
	case []uint8:
		return sliceEq(x, b.U8())
	case []int8:
		return sliceEq(x, b.I8())
	case []uint16:
		return sliceEq(x, b.U16())
	case []int16:
		return sliceEq(x, b.I16())
	case []int32:
		return sliceEq(x, b.I32())
	}
	return false
}

func sliceEq[T comparable](a, b []T) bool {
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

// Clone deep-copies data and qparams.
func (q *QTensor) Clone() *QTensor {
	return &QTensor{Data: q.Data.Clone(), Scheme: q.Scheme, Scales: append([]float32(nil), q.Scales...),
		ZeroPoints: append([]int32(nil), q.ZeroPoints...), Axis: q.Axis}
}

// CopyFrom is copy_ from a quantized tensor: PyTorch 1.13 copies the
// integers AND takes over the source's qparams (it does not requantize), and
// requires the same dtype, shape and qscheme.
func (q *QTensor) CopyFrom(src *QTensor) error {
	if q.Scheme != src.Scheme {
		return fmt.Errorf("copy_: qscheme %v from %v (PyTorch: quantized copy only works with the same qscheme)", q.Scheme, src.Scheme)
	}
	if q.Data.DType != src.Data.DType {
		return fmt.Errorf("copy_: dtype %v from %v", q.Data.DType, src.Data.DType)
	}
	if !SameShape(q.Data.Shape, src.Data.Shape) {
		return fmt.Errorf("copy_: shape %v from %v", q.Data.Shape, src.Data.Shape)
	}
	c := src.Clone()
	*q = *c
	return nil
}

// CopyFromFloat is copy_ from a float tensor: the values are quantized into
// the destination's own qparams with PyTorch's rule.
func (q *QTensor) CopyFromFloat(src *Tensor) error {
	if err := checkFloatInput(src); err != nil {
		return err
	}
	if !SameShape(q.Data.Shape, src.Shape) {
		return fmt.Errorf("copy_: shape %v from %v", q.Data.Shape, src.Shape)
	}
	if q.PerChannel() {
		quantizeChannels(q.Data.Data, src.F32(), src.Shape, q.Axis, q.Scales, q.ZeroPoints, q.Data.DType, RuleTorch)
	} else {
		quantizeRun(q.Data.DType, q.Data.Data, 0, src.F32(), q.Scales[0], q.ZeroPoints[0], RuleTorch)
	}
	return nil
}

func (q *QTensor) withData(d *Tensor) *QTensor {
	return &QTensor{Data: d, Scheme: q.Scheme, Scales: append([]float32(nil), q.Scales...),
		ZeroPoints: append([]int32(nil), q.ZeroPoints...), Axis: q.Axis}
}

func (q *QTensor) String() string {
	if q.PerChannel() {
		return fmt.Sprintf("q%v%v %v axis %d", q.Data.DType, q.Data.Shape, q.Scheme, q.Axis)
	}
	return fmt.Sprintf("q%v%v scale %g zp %d", q.Data.DType, q.Data.Shape, q.Scales[0], q.ZeroPoints[0])
}
