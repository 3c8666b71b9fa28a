// Package quant holds the ONNX quantization ops: QuantizeLinear,
// DequantizeLinear and DynamicQuantizeLinear, on top of internal/tensor's
// quantize and dequantize loops (ONNX rounding: x / scale, half to even).
package quant

import (
	"errors"
	"fmt"
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
	"github.com/x448/float16"
)

func init() {
	for _, dt := range []tensor.DType{tensor.Float32, tensor.Float16, tensor.Int32} {
		runtime.Register("", "QuantizeLinear", dt, newQuantize)
	}
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8, tensor.Int32, tensor.Uint16, tensor.Int16} {
		runtime.Register("", "DequantizeLinear", dt, newDequantize)
	}
	runtime.Register("", "DynamicQuantizeLinear", tensor.Float32, newDynamic)
}

// grain is the number of elements below which splitting over threads costs
// more than it saves.
const grain = 1 << 15

type qlinear struct {
	node        *graph.Node
	axis        int64
	block       int64        // block_size; 0 when not blocked
	outputDType tensor.DType // 0: from the zero point, else uint8
}

// blockSize reads block_size (opset 21+): 0 for per-tensor/per-axis, > 0
// for blocked quantization.
func blockSize(n *graph.Node) (int64, error) {
	b, err := n.AttrInt("block_size", 0)
	if err != nil {
		return 0, err
	}
	if b < 0 {
		return 0, fmt.Errorf("%v: negative block_size %d", n, b)
	}
	return b, nil
}

// blockedParams expands blocked qparams (scale and zero point of x's rank,
// with ceil(x.shape[axis] / block) entries along axis) to one scale and
// zero point per element of x.
func blockedParams(n *graph.Node, x, scale, zp *tensor.Tensor, axis, block int64, zpType tensor.DType) ([]float32, []int32, error) {
	if err := scale.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%v: scale: %w", n, err)
	}
	sc, err := floats(scale)
	if err != nil || scale.DType == tensor.Int32 {
		return nil, nil, fmt.Errorf("%v: scale must be float32 or float16, got %v", n, scale.DType)
	}
	r := int64(x.Rank())
	if axis < -r || axis >= r {
		return nil, nil, fmt.Errorf("%v: axis %d out of range for rank %d", n, axis, r)
	}
	if axis < 0 {
		axis += r
	}
	if scale.Rank() != x.Rank() {
		return nil, nil, fmt.Errorf("%v: blocked scale has rank %d, input rank %d", n, scale.Rank(), x.Rank())
	}
	d := int64(x.Shape[axis])
	nb := (d + block - 1) / block
	for i := range x.Shape {
		want := x.Shape[i]
		if int64(i) == axis {
			want = int(nb)
		}
		if scale.Shape[i] != want {
			return nil, nil, fmt.Errorf("%v: blocked scale shape %v does not fit input %v with block_size %d on axis %d", n, scale.Shape, x.Shape, block, axis)
		}
	}
	var zs []int32
	if zp != nil {
		if err := zp.Validate(); err != nil {
			return nil, nil, fmt.Errorf("%v: zero point: %w", n, err)
		}
		if zp.DType != zpType || !tensor.SameShape(zp.Shape, scale.Shape) {
			return nil, nil, fmt.Errorf("%v: zero point %v does not match scale %v / type %v", n, zp, scale, zpType)
		}
		f, _ := zp.AsFloat64()
		zs = make([]int32, len(f))
		for i, v := range f {
			zs[i] = int32(v)
		}
	}
	inner := 1
	for _, v := range x.Shape[axis+1:] {
		inner *= v
	}
	total := x.Len()
	es := make([]float32, total)
	ez := make([]int32, total)
	for i := range es {
		in := i % inner
		a := int64(i/inner) % d
		o := i / inner / int(d)
		j := (o*int(nb)+int(a/block))*inner + in
		es[i] = sc[j]
		if zs != nil {
			ez[i] = zs[j]
		}
	}
	return es, ez, nil
}

func newQuantize(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) < 2 || len(n.Inputs) > 3 || len(n.Outputs) != 1 {
		return nil, fmt.Errorf("%v: QuantizeLinear takes 2 or 3 inputs and 1 output", n)
	}
	axis, err := n.AttrInt("axis", 1)
	if err != nil {
		return nil, err
	}
	block, err := blockSize(n)
	if err != nil {
		return nil, err
	}
	od, err := n.AttrInt("output_dtype", 0)
	if err != nil {
		return nil, err
	}
	k := &qlinear{node: n, axis: axis, block: block}
	if od != 0 {
		dt := tensor.DType(od)
		if !quantType(dt) {
			return nil, fmt.Errorf("%v: output_dtype %v is not supported (int8, uint8, int16, uint16)", n, dt)
		}
		k.outputDType = dt
	}
	return k, nil
}

func quantType(dt tensor.DType) bool {
	switch dt {
	case tensor.Uint8, tensor.Int8, tensor.Uint16, tensor.Int16:
		return true
	}
	return false
}

// floats returns t's values as float32 (float16 and int32 are converted).
func floats(t *tensor.Tensor) ([]float32, error) {
	switch t.DType {
	case tensor.Float32:
		return t.F32(), nil
	case tensor.Float16:
		h := t.F16()
		out := make([]float32, len(h))
		for i, v := range h {
			out[i] = v.Float32()
		}
		return out, nil
	case tensor.Int32:
		v := t.I32()
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(x)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported type %v", t.DType)
}

// qparams reads scale and zero point tensors: per-tensor (scalar or one
// element) or per-axis (1-D along axis). It returns per-channel slices, the
// normalized axis, and whether it is per-axis.
func qparams(n *graph.Node, x, scale, zp *tensor.Tensor, axis int64, zpType tensor.DType) ([]float32, []int32, int, bool, error) {
	if err := scale.Validate(); err != nil {
		return nil, nil, 0, false, fmt.Errorf("%v: scale: %w", n, err)
	}
	sc, err := floats(scale)
	if err != nil || scale.DType == tensor.Int32 {
		return nil, nil, 0, false, fmt.Errorf("%v: scale must be float32 or float16, got %v", n, scale.DType)
	}
	if scale.Rank() > 1 {
		return nil, nil, 0, false, fmt.Errorf("%v: scale of rank %d needs block_size (blocked quantization)", n, scale.Rank())
	}
	var zps []int32
	if zp != nil {
		if err := zp.Validate(); err != nil {
			return nil, nil, 0, false, fmt.Errorf("%v: zero point: %w", n, err)
		}
		if zp.DType != zpType {
			return nil, nil, 0, false, fmt.Errorf("%v: zero point is %v, want %v", n, zp.DType, zpType)
		}
		if !tensor.SameShape(zp.Shape, scale.Shape) && !(zp.Len() == 1 && len(sc) == 1) {
			return nil, nil, 0, false, fmt.Errorf("%v: zero point shape %v differs from scale shape %v", n, zp.Shape, scale.Shape)
		}
		f, _ := zp.AsFloat64()
		zps = make([]int32, len(f))
		for i, v := range f {
			zps[i] = int32(v)
		}
	} else {
		zps = make([]int32, len(sc))
	}
	perAxis := scale.Rank() == 1 && !(len(sc) == 1 && (x.Rank() == 0 || x.Shape[normAxisOr0(axis, x.Rank())] != 1))
	if !perAxis {
		if len(sc) != 1 {
			return nil, nil, 0, false, fmt.Errorf("%v: per-tensor scale has %d elements", n, len(sc))
		}
		return sc, zps, 0, false, nil
	}
	r := int64(x.Rank())
	if axis < -r || axis >= r {
		return nil, nil, 0, false, fmt.Errorf("%v: axis %d out of range for rank %d", n, axis, r)
	}
	if axis < 0 {
		axis += r
	}
	if len(sc) != x.Shape[axis] {
		return nil, nil, 0, false, fmt.Errorf("%v: %d scales for axis %d of size %d", n, len(sc), axis, x.Shape[axis])
	}
	return sc, zps, int(axis), true, nil
}

func normAxisOr0(axis int64, rank int) int {
	if axis < 0 {
		axis += int64(rank)
	}
	if axis < 0 || axis >= int64(rank) {
		return 0
	}
	return int(axis)
}

func checkScales(n *graph.Node, sc []float32) error {
	for _, s := range sc {
		// ONNX does not define a zero or negative scale; dividing by it
		// would give infinities, so refuse it.
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("%v: scale %v must be positive and finite", n, s)
		}
	}
	return nil
}

// blocks calls fn for every run of elements sharing one channel: [off,
// off+inner) with channel ch, in parallel over runs.
func blocks(ctx *runtime.Context, shape []int, axis int, perAxis bool, channels int, fn func(off, length, ch int)) {
	total := 1
	for _, d := range shape {
		total *= d
	}
	if !perAxis {
		ctx.Parallel(total, grain, func(lo, hi int) { fn(lo, hi-lo, 0) })
		return
	}
	inner := 1
	for _, d := range shape[axis+1:] {
		inner *= d
	}
	if inner == 0 || total == 0 {
		return
	}
	runs := total / inner
	g := grain / inner
	ctx.Parallel(runs, g, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			fn(r*inner, inner, r%channels)
		}
	})
}

func (k *qlinear) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.node
	if len(in) < 2 || in[0] == nil || in[1] == nil {
		return nil, fmt.Errorf("%v: missing input", n)
	}
	x := in[0]
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("%v: x: %w", n, err)
	}
	var zp *tensor.Tensor
	if len(in) > 2 {
		zp = in[2]
	}
	outType := tensor.Uint8
	if zp != nil {
		outType = zp.DType
		if k.outputDType != 0 && k.outputDType != outType {
			return nil, fmt.Errorf("%v: output_dtype %v differs from the zero point's %v", n, k.outputDType, outType)
		}
	} else if k.outputDType != 0 {
		outType = k.outputDType
	}
	if !quantType(outType) {
		return nil, fmt.Errorf("%v: output type %v is not supported (int8, uint8, int16, uint16)", n, outType)
	}
	xf, err := floats(x)
	if err != nil {
		return nil, fmt.Errorf("%v: x: %w", n, err)
	}
	if k.block > 0 {
		es, ez, err := blockedParams(n, x, in[1], zp, k.axis, k.block, outType)
		if err != nil {
			return nil, err
		}
		if err := checkScales(n, es); err != nil {
			return nil, err
		}
		out, err := tensor.New(outType, x.Shape)
		if err != nil {
			return nil, err
		}
		for i := range es {
			tensor.QuantizeInto(out, i, xf[i:i+1], es[i], ez[i], tensor.RuleONNX)
		}
		return []*tensor.Tensor{out}, nil
	}
	sc, zps, axis, perAxis, err := qparams(n, x, in[1], zp, k.axis, outType)
	if err != nil {
		return nil, err
	}
	if err := checkScales(n, sc); err != nil {
		return nil, err
	}
	if perAxis {
		// The per-channel loops (vectorised for every axis) are memory
		// bound; one thread is enough.
		q, err := tensor.QuantizePerChannel(tensor.FromFloat32(x.Shape, xf), sc, zps, axis, outType, tensor.RuleONNX)
		if err != nil {
			return nil, fmt.Errorf("%v: %w", n, err)
		}
		return []*tensor.Tensor{q.Data}, nil
	}
	// Every element is written below: a recycled buffer needs no zeroing
	// (a model's input quantization was its largest per-run allocation).
	out, err := ctx.NewUninit(outType, x.Shape)
	if err != nil {
		return nil, err
	}
	blocks(ctx, x.Shape, 0, false, 1, func(off, length, ch int) {
		tensor.QuantizeInto(out, off, xf[off:off+length], sc[0], zps[0], tensor.RuleONNX)
	})
	return []*tensor.Tensor{out}, nil
}

type dqlinear struct {
	node        *graph.Node
	axis        int64
	block       int64        // block_size; 0 when not blocked
	outputDType tensor.DType // 0: the scale's type
}

func newDequantize(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) < 2 || len(n.Inputs) > 3 || len(n.Outputs) != 1 {
		return nil, fmt.Errorf("%v: DequantizeLinear takes 2 or 3 inputs and 1 output", n)
	}
	axis, err := n.AttrInt("axis", 1)
	if err != nil {
		return nil, err
	}
	block, err := blockSize(n)
	if err != nil {
		return nil, err
	}
	od, err := n.AttrInt("output_dtype", 0)
	if err != nil {
		return nil, err
	}
	if od != 0 && tensor.DType(od) != tensor.Float32 && tensor.DType(od) != tensor.Float16 {
		return nil, fmt.Errorf("%v: output_dtype %v is not supported", n, tensor.DType(od))
	}
	return &dqlinear{node: n, axis: axis, block: block, outputDType: tensor.DType(od)}, nil
}

func (k *dqlinear) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.node
	if len(in) < 2 || in[0] == nil || in[1] == nil {
		return nil, fmt.Errorf("%v: missing input", n)
	}
	x := in[0]
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("%v: x: %w", n, err)
	}
	switch x.DType {
	case tensor.Uint8, tensor.Int8, tensor.Int32, tensor.Uint16, tensor.Int16:
	default:
		return nil, fmt.Errorf("%v: x type %v is not supported", n, x.DType)
	}
	var zp *tensor.Tensor
	if len(in) > 2 {
		zp = in[2]
	}
	var sc []float32
	var zps []int32
	var axis int
	var perAxis bool
	var err error
	if k.block > 0 {
		sc, zps, err = blockedParams(n, x, in[1], zp, k.axis, k.block, x.DType)
	} else {
		sc, zps, axis, perAxis, err = qparams(n, x, in[1], zp, k.axis, x.DType)
	}
	if err != nil {
		return nil, err
	}
	if x.DType == tensor.Int32 {
		for _, z := range zps {
			if z != 0 {
				return nil, fmt.Errorf("%v: int32 input needs a zero point of 0, got %d", n, z)
			}
		}
	}
	out, err := tensor.New(tensor.Float32, x.Shape)
	if err != nil {
		return nil, err
	}
	y := out.F32()
	if k.block > 0 {
		for i := range y {
			tensor.DequantizeLinearInto(y[i:i+1], x, i, sc[i], zps[i])
		}
	} else {
		blocks(ctx, x.Shape, axis, perAxis, len(sc), func(off, length, ch int) {
			tensor.DequantizeLinearInto(y[off:off+length], x, off, sc[ch], zps[ch])
		})
	}
	if k.outputDType == tensor.Float16 || (k.outputDType == 0 && in[1].DType == tensor.Float16) {
		// The output type is output_dtype, or else the scale's.
		h := tensor.MustNew(tensor.Float16, x.Shape)
		hd := h.F16()
		for i, v := range y {
			hd[i] = float16.Fromfloat32(v)
		}
		out = h
	}
	return []*tensor.Tensor{out}, nil
}

type dynamic struct{ node *graph.Node }

func newDynamic(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) != 1 || len(n.Outputs) != 3 {
		return nil, fmt.Errorf("%v: DynamicQuantizeLinear takes 1 input and 3 outputs", n)
	}
	return &dynamic{node: n}, nil
}

// DynamicQParams is ONNX DynamicQuantizeLinear's scale and zero point for
// data with the given min and max, in its float32 arithmetic:
//
//	x_min = min(0, min(x)), x_max = max(0, max(x))
//	scale = (x_max - x_min) / 255
//	zp = round_half_even(clip(0 - x_min / scale, 0, 255))
//
// When the range is empty (all zeros) ONNX divides by zero; ONNX Runtime
// uses scale 1 there and so do we.
func DynamicQParams(mn, mx float32) (float32, uint8) {
	mn = min(mn, 0)
	mx = max(mx, 0)
	if mn == mx {
		return 1, 0
	}
	scale := (mx - mn) / 255
	z := 0 - mn/scale
	z = min(max(z, 0), 255)
	return scale, uint8(math.RoundToEven(float64(z)))
}

var errNonFinite = errors.New("input holds NaN or infinity")

func (k *dynamic) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.node
	if len(in) != 1 || in[0] == nil {
		return nil, fmt.Errorf("%v: missing input", n)
	}
	x := in[0]
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("%v: x: %w", n, err)
	}
	if x.DType != tensor.Float32 {
		return nil, fmt.Errorf("%v: x must be float32, got %v", n, x.DType)
	}
	v := x.F32()
	mn, mx := float32(0), float32(0)
	for _, f := range v {
		if f-f != 0 { // NaN or ±Inf
			return nil, fmt.Errorf("%v: %w", n, errNonFinite)
		}
		mn = min(mn, f)
		mx = max(mx, f)
	}
	scale, zp := DynamicQParams(mn, mx)
	y, err := tensor.New(tensor.Uint8, x.Shape)
	if err != nil {
		return nil, err
	}
	ctx.Parallel(len(v), grain, func(lo, hi int) {
		tensor.QuantizeInto(y, lo, v[lo:hi], scale, int32(zp), tensor.RuleONNX)
	})
	return []*tensor.Tensor{y, tensor.Scalar(scale), {DType: tensor.Uint8, Shape: []int{}, Data: []uint8{zp}}}, nil
}
