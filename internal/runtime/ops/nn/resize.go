package nn

import (
	"fmt"
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	register("", "Resize", newResize)
	// Quantized (QOperator) graphs resize uint8/int8 tensors directly; only
	// nearest is exact there, so only nearest is accepted (see Run).
	runtime.Register("", "Resize", tensor.Uint8, newResize)
	runtime.Register("", "Resize", tensor.Int8, newResize)
	register("", "Upsample", newUpsample)
}

// resize implements Resize (opset 10-19) and Upsample (7, 9) as separable
// per-axis filters: each output coordinate along an axis is a weighted sum
// of a few input coordinates, computed once per axis, and the axes are
// applied one after the other from the innermost, which is how the ONNX
// reference composes them (it matters for tf_crop_and_resize's
// extrapolation value).
type resize struct {
	n           *graph.Node
	opset       int64
	upsample    bool
	mode        string // nearest, linear, cubic
	coord       string
	nearest     string
	cubicA      float64
	exclude     bool
	extrapolate float32
	antialias   bool
	keepAspect  string
	axes        []int64
	attrScales  []float32 // Upsample-7
}

func newResize(n *graph.Node, opset int64) (runtime.Kernel, error) {
	r := &resize{n: n, opset: opset}
	var err error
	if r.mode, err = n.AttrString("mode", "nearest"); err != nil {
		return nil, err
	}
	switch r.mode {
	case "nearest", "linear", "cubic":
	default:
		return nil, fmt.Errorf("%v: unknown mode %q", n, r.mode)
	}
	if opset < 11 {
		if r.mode == "cubic" {
			return nil, fmt.Errorf("%v: cubic mode needs opset 11", n)
		}
		r.coord, r.nearest = "asymmetric", "simple"
		return r, nil
	}
	if r.coord, err = n.AttrString("coordinate_transformation_mode", "half_pixel"); err != nil {
		return nil, err
	}
	switch r.coord {
	case "half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize", "tf_half_pixel_for_nn":
	case "half_pixel_symmetric":
		if opset < 19 {
			return nil, fmt.Errorf("%v: half_pixel_symmetric needs opset 19", n)
		}
	default:
		return nil, fmt.Errorf("%v: unknown coordinate_transformation_mode %q", n, r.coord)
	}
	if r.nearest, err = n.AttrString("nearest_mode", "round_prefer_floor"); err != nil {
		return nil, err
	}
	switch r.nearest {
	case "round_prefer_floor", "round_prefer_ceil", "floor", "ceil":
	default:
		return nil, fmt.Errorf("%v: unknown nearest_mode %q", n, r.nearest)
	}
	a, err := n.AttrFloat("cubic_coeff_a", -0.75)
	if err != nil {
		return nil, err
	}
	r.cubicA = float64(a)
	ex, err := n.AttrInt("exclude_outside", 0)
	if err != nil {
		return nil, err
	}
	r.exclude = ex != 0
	if r.extrapolate, err = n.AttrFloat("extrapolation_value", 0); err != nil {
		return nil, err
	}
	aa, err := n.AttrInt("antialias", 0)
	if err != nil {
		return nil, err
	}
	r.antialias = aa != 0 && r.mode != "nearest"
	if r.keepAspect, err = n.AttrString("keep_aspect_ratio_policy", "stretch"); err != nil {
		return nil, err
	}
	switch r.keepAspect {
	case "stretch", "not_larger", "not_smaller":
	default:
		return nil, fmt.Errorf("%v: unknown keep_aspect_ratio_policy %q", n, r.keepAspect)
	}
	if r.axes, err = n.AttrInts("axes", nil); err != nil {
		return nil, err
	}
	return r, nil
}

func newUpsample(n *graph.Node, opset int64) (runtime.Kernel, error) {
	r := &resize{n: n, opset: opset, upsample: true, coord: "asymmetric", nearest: "simple"}
	var err error
	if r.mode, err = n.AttrString("mode", "nearest"); err != nil {
		return nil, err
	}
	switch r.mode {
	case "nearest":
	case "linear", "bilinear":
		r.mode = "linear"
	default:
		return nil, fmt.Errorf("%v: unknown mode %q", n, r.mode)
	}
	if opset < 9 {
		if r.attrScales, err = n.AttrFloats("scales", nil); err != nil {
			return nil, err
		}
		if r.attrScales == nil {
			return nil, fmt.Errorf("%v: scales attribute is required", n)
		}
	}
	return r, nil
}

func (r *resize) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if x := input(in, 0); x != nil && (x.DType == tensor.Uint8 || x.DType == tensor.Int8) {
		return r.runInt8(ctx, in)
	}
	n := r.n
	x, err := f32In(n, in, 0)
	if err != nil {
		return nil, err
	}
	rank := x.Rank()
	var scales []float64
	var sizes []int64
	var roi []float64
	switch {
	case r.upsample && r.opset < 9:
		for _, s := range r.attrScales {
			scales = append(scales, float64(s))
		}
	case r.upsample || r.opset < 11:
		s, err := f32In(n, in, 1)
		if err != nil {
			return nil, err
		}
		for _, v := range s.F32() {
			scales = append(scales, float64(v))
		}
	default:
		if t := input(in, 1); t != nil && t.Len() > 0 {
			vals, err := t.AsFloat64()
			if err != nil {
				return nil, fmt.Errorf("%v: roi: %v", n, err)
			}
			roi = vals
		}
		if t := input(in, 2); t != nil && t.Len() > 0 {
			if t.DType != tensor.Float32 {
				return nil, fmt.Errorf("%v: scales must be float32", n)
			}
			for _, v := range t.F32() {
				scales = append(scales, float64(v))
			}
		}
		if t := input(in, 3); t != nil && t.Len() > 0 {
			if scales != nil {
				return nil, fmt.Errorf("%v: only one of scales and sizes may be given", n)
			}
			if sizes, err = intsIn(n, in, 3); err != nil {
				return nil, err
			}
		}
		if scales == nil && sizes == nil {
			return nil, fmt.Errorf("%v: one of scales and sizes is required", n)
		}
	}
	// Axes the scales/sizes/roi refer to.
	axes := make([]int, 0, rank)
	if r.axes != nil {
		for _, a := range r.axes {
			ax, err := normAxis(n, int(max(min(a, 1<<30), -1<<30)), rank)
			if err != nil {
				return nil, err
			}
			axes = append(axes, ax)
		}
	} else {
		for i := 0; i < rank; i++ {
			axes = append(axes, i)
		}
	}
	k := len(axes)
	if (scales != nil && len(scales) != k) || (sizes != nil && len(sizes) != k) {
		return nil, fmt.Errorf("%v: scales/sizes need %d values for input %v", n, k, x.Shape)
	}
	if roi != nil && len(roi) != 2*k {
		if r.coord == "tf_crop_and_resize" {
			return nil, fmt.Errorf("%v: roi has %d values, want %d", n, len(roi), 2*k)
		}
		roi = nil
	}
	scale := make([]float64, rank)
	out := append([]int(nil), x.Shape...)
	for i := range scale {
		scale[i] = 1
	}
	if sizes != nil {
		for i, a := range axes {
			if sizes[i] < 0 || sizes[i] > tensor.MaxElements {
				return nil, fmt.Errorf("%v: bad size %d", n, sizes[i])
			}
			if x.Shape[a] == 0 {
				return nil, fmt.Errorf("%v: cannot resize an empty dim", n)
			}
			// As ONNX Runtime derives it: a float32 quotient.
			scale[a] = float64(float32(sizes[i]) / float32(x.Shape[a]))
			out[a] = int(sizes[i])
		}
		if r.keepAspect != "stretch" {
			s := scale[axes[0]]
			for _, a := range axes[1:] {
				if r.keepAspect == "not_larger" {
					s = math.Min(s, scale[a])
				} else {
					s = math.Max(s, scale[a])
				}
			}
			for _, a := range axes {
				scale[a] = s
				out[a] = int(s*float64(x.Shape[a]) + 0.5)
			}
		}
	} else {
		for i, a := range axes {
			s := scales[i]
			if !(s > 0) || math.IsInf(s, 0) {
				return nil, fmt.Errorf("%v: scale %v must be positive", n, s)
			}
			scale[a] = s
			o := math.Floor(s * float64(x.Shape[a]))
			if o > tensor.MaxElements {
				return nil, fmt.Errorf("%v: output dim %v too large", n, o)
			}
			out[a] = int(o)
		}
	}
	if _, err := tensor.NumElements(out); err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	fullRoi := make([]float64, 2*rank)
	for i := 0; i < rank; i++ {
		fullRoi[rank+i] = 1
	}
	if roi != nil {
		for i, a := range axes {
			fullRoi[a], fullRoi[rank+a] = roi[i], roi[k+i]
		}
	}
	// Per-axis filters, innermost first; identity axes are skipped.
	type pass struct {
		d int
		t *resizeTaps
	}
	var passes []pass
	for d := rank - 1; d >= 0; d-- {
		// An axis with scale 1 is left as it is, whatever the coordinate
		// transformation, as ONNX Runtime does: tf_half_pixel_for_nn maps
		// output o to o+0.5, which ceil or round_prefer_ceil would turn
		// into o+1, shifting every unscaled N and C by one plane (and
		// tf_crop_and_resize would crop an axis nobody asked to resize).
		if scale[d] == 1 && out[d] == x.Shape[d] {
			continue
		}
		// Antialiasing widens the filter to about 2/scale taps (4/scale for
		// cubic) per output: bound that work for absurd scales.
		if r.antialias && scale[d] < 1 && (4/scale[d]+4)*float64(max(out[d], 1)) > 1<<26 {
			return nil, fmt.Errorf("%v: antialiased scale %v on dim %d needs too many taps", n, scale[d], d)
		}
		t := r.axisTaps(x.Shape[d], out[d], scale[d], fullRoi[d], fullRoi[rank+d])
		if !t.identity(x.Shape[d]) {
			passes = append(passes, pass{d, t})
		}
	}
	y, err := newF32(ctx, n, out)
	if err != nil {
		return nil, err
	}
	if len(passes) == 0 {
		copy(y.F32(), x.F32())
		return []*tensor.Tensor{y}, nil
	}
	cur := x.F32()
	shape := append([]int(nil), x.Shape...)
	for i, p := range passes {
		d := p.d
		var next []float32
		if i == len(passes)-1 {
			next = y.F32()
		} else {
			next = make([]float32, prod(shape[:d])*out[d]*prod(shape[d+1:]))
		}
		p.t.apply(ctx, cur, next, prod(shape[:d]), shape[d], out[d], prod(shape[d+1:]), r.extrapolate)
		cur = next
		shape[d] = out[d]
	}
	return []*tensor.Tensor{y}, nil
}

// taps holds, for each output index along one axis, n input indices and
// weights (or an extrapolated flag).
type resizeTaps struct {
	n      int
	idx    []int
	w      []float32
	extrap []bool
}

func (t *resizeTaps) identity(in int) bool {
	out := len(t.extrap)
	if out != in {
		return false
	}
	for o := 0; o < out; o++ {
		if t.extrap[o] {
			return false
		}
		hit := false
		for j := 0; j < t.n; j++ {
			w := t.w[o*t.n+j]
			switch {
			case w == 0:
			case w == 1 && t.idx[o*t.n+j] == o && !hit:
				hit = true
			default:
				return false
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

func (t *resizeTaps) apply(ctx *runtime.Context, src, dst []float32, outer, in, out, inner int, extrap float32) {
	ctx.Parallel(outer, 1, func(o0, o1 int) {
		for o := o0; o < o1; o++ {
			s := src[o*in*inner : (o+1)*in*inner]
			for j := 0; j < out; j++ {
				d := dst[(o*out+j)*inner : (o*out+j+1)*inner]
				if t.extrap[j] {
					for i := range d {
						d[i] = extrap
					}
					continue
				}
				for i := range d {
					d[i] = 0
				}
				for k := 0; k < t.n; k++ {
					w := t.w[j*t.n+k]
					if w == 0 {
						continue
					}
					row := s[t.idx[j*t.n+k]*inner : (t.idx[j*t.n+k]+1)*inner]
					for i, v := range row {
						d[i] += w * v
					}
				}
			}
		}
	})
}

// original maps output coordinate o to the input coordinate. It computes
// in float32 with ONNX Runtime's operation order: scales are float32, and
// for nearest a coordinate that lands on x.5 or on an integer in exact
// arithmetic must land there here too, where float64 would round it
// slightly off and pick the other neighbour (for example 1.5/0.6 - 0.5 is
// 2 in float32 but 1.99999990 in float64, a different floor).
//
// align_corners and tf_crop_and_resize divide by the output length as the
// ONNX reference defines it, scale·length_original (not rounded), which the
// node tests test_resize_downsample_scales_{linear,cubic}_align_corners
// check; ONNX Runtime uses the rounded length there, so the two differ
// when scale·length_original is not an integer (never with sizes).
func (r *resize) original(o float64, in, outInt int, scale, roiStart, roiEnd float64) float64 {
	x, s, inF := float32(o), float32(scale), float32(in)
	outF := s * inF
	switch r.coord {
	case "align_corners":
		if outF == 1 {
			return 0
		}
		return float64(x * (inF - 1) / (outF - 1))
	case "asymmetric":
		return float64(x / s)
	case "tf_half_pixel_for_nn":
		return float64((x + 0.5) / s)
	case "tf_crop_and_resize":
		rs, re := float32(roiStart), float32(roiEnd)
		if outF == 1 {
			return float64(0.5 * (rs + re) * (inF - 1))
		}
		return float64(rs*(inF-1) + x*(re-rs)*(inF-1)/(outF-1))
	case "pytorch_half_pixel":
		// The spec's (and ONNX Runtime's) "length_resized > 1", on the
		// output length itself.
		if outInt <= 1 {
			return 0
		}
		return float64((x+0.5)/s - 0.5)
	case "half_pixel_symmetric":
		adj := float32(outInt) / outF
		center := inF / 2
		offset := center * (1 - adj)
		return float64(offset + (x+0.5)/s - 0.5)
	}
	return float64((x+0.5)/s - 0.5) // half_pixel
}

func cubicWeight(x, a float64) float64 {
	x = math.Abs(x)
	switch {
	case x <= 1:
		return ((a+2)*x-(a+3))*x*x + 1
	case x < 2:
		return ((a*x-5*a)*x+8*a)*x - 4*a
	}
	return 0
}

func (r *resize) axisTaps(in, out int, scale, roiStart, roiEnd float64) *resizeTaps {
	var n, start int
	s := math.Min(scale, 1)
	switch r.mode {
	case "nearest":
		n, start = 2, 0
	case "linear":
		n, start = 2, 0
		if r.antialias {
			start = int(math.Floor(-1/s)) + 1
			n = 2 - 2*start
		}
	case "cubic":
		n, start = 4, -1
		if r.antialias {
			start = int(math.Floor(-2/s)) + 1
			n = 2 - 2*start
		}
	}
	t := &resizeTaps{n: n, idx: make([]int, out*n), w: make([]float32, out*n), extrap: make([]bool, out)}
	coef := make([]float64, n)
	for o := 0; o < out; o++ {
		x := r.original(float64(o), in, out, scale, roiStart, roiEnd)
		if r.coord == "tf_crop_and_resize" && (x < 0 || x > float64(in-1)) {
			t.extrap[o] = true
			continue
		}
		// The left neighbour f and ratio in (0, 1], as the reference picks
		// them (an integer coordinate is the right neighbour of f).
		f := math.Floor(x)
		ratio := x - f
		if ratio == 0 {
			f--
			ratio = 1
		}
		switch r.mode {
		case "nearest":
			c1 := false
			switch r.nearest {
			case "round_prefer_floor":
				c1 = ratio > 0.5
			case "round_prefer_ceil":
				c1 = ratio >= 0.5
			case "floor":
				c1 = ratio == 1
			case "ceil":
				c1 = true
			case "simple":
				// Opset < 11 (ONNX Runtime's rule): truncate when
				// upsampling, ceil when downsampling.
				c1 = ratio == 1 || scale < 1
			}
			coef[0], coef[1] = 0, 0
			if c1 {
				coef[1] = 1
			} else {
				coef[0] = 1
			}
		case "linear":
			sum := 0.0
			for i := 0; i < n; i++ {
				arg := (float64(start+i) - ratio) * s
				if !r.antialias {
					arg = float64(start+i) - ratio
				}
				coef[i] = math.Max(0, math.Min(1, 1-math.Abs(arg)))
				sum += coef[i]
			}
			if r.antialias {
				for i := range coef {
					coef[i] /= sum
				}
			}
		case "cubic":
			sum := 0.0
			for i := 0; i < n; i++ {
				arg := float64(start+i) - ratio
				if r.antialias {
					arg *= s
				}
				coef[i] = cubicWeight(arg, r.cubicA)
				sum += coef[i]
			}
			if r.antialias {
				for i := range coef {
					coef[i] /= sum
				}
			}
		}
		base := int(f) + start
		if r.exclude {
			sum := 0.0
			for i := 0; i < n; i++ {
				if j := base + i; j < 0 || j >= in {
					coef[i] = 0
				}
				sum += coef[i]
			}
			if sum != 0 {
				for i := range coef {
					coef[i] /= sum
				}
			}
		}
		for i := 0; i < n; i++ {
			t.idx[o*n+i] = min(max(base+i, 0), in-1)
			t.w[o*n+i] = float32(coef[i])
		}
	}
	return t
}

// runInt8 resizes a uint8/int8 tensor with mode nearest: every output is a
// copy of one input, so going through float32 is exact.
func (r *resize) runInt8(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	if r.mode != "nearest" {
		return nil, fmt.Errorf("%v: %s mode on %v input is not supported (only nearest)", r.n, r.mode, x.DType)
	}
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("%v: %v", r.n, err)
	}
	f := make([]float32, x.Len())
	switch d := x.Data.(type) {
	case []uint8:
		for i, v := range d {
			f[i] = float32(v)
		}
	case []int8:
		for i, v := range d {
			f[i] = float32(v)
		}
	}
	fin := append([]*tensor.Tensor{tensor.FromFloat32(x.Shape, f)}, in[1:]...)
	out, err := r.Run(ctx, fin)
	if err != nil {
		return nil, err
	}
	y, err := ctx.New(x.DType, out[0].Shape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", r.n, err)
	}
	switch d := y.Data.(type) {
	case []uint8:
		for i, v := range out[0].F32() {
			d[i] = uint8(v)
		}
	case []int8:
		for i, v := range out[0].F32() {
			d[i] = int8(v)
		}
	}
	return []*tensor.Tensor{y}, nil
}
