package basic

import (
	"fmt"
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	regAny("Identity", kf(func(_ *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		return one(in[0])
	}))
	regAny("Shape", newShape)
	regAny("Size", kf(func(_ *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		return one(&tensor.Tensor{DType: tensor.Int64, Shape: []int{}, Data: []int64{int64(in[0].Len())}})
	}))
	regAny("Reshape", newReshape)
	regAny("Flatten", newFlatten)
	regAny("Squeeze", newSqueeze)
	regAny("Unsqueeze", newUnsqueeze)
	regAny("Dropout", newDropout)
	regAny("Transpose", newTranspose)
	regAny("Slice", newSlice)
	regAny("Expand", kf(expand))
	regAny("Tile", kf(tile))
	regAny("Concat", newConcat)
	regAny("Split", newSplit)
	regAny("Gather", newGather)
	regAny("Constant", newConstant)
	regAny("ConstantOfShape", newConstantOfShape)
	reg("Range", []tensor.DType{tensor.Float32, tensor.Float64, tensor.Int16, tensor.Int32, tensor.Int64}, kf(rangeOp))
}

func newShape(n *graph.Node, opset int64) (runtime.Kernel, error) {
	start, err := n.AttrInt("start", 0)
	if err != nil {
		return nil, err
	}
	end, err := n.AttrInt("end", math.MaxInt64)
	if err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(_ *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if len(in) < 1 || in[0] == nil {
			return nil, fmt.Errorf("input 0 is missing")
		}
		r := int64(len(in[0].Shape))
		s, e := start, end
		if s < 0 {
			s += r
		}
		if e < 0 {
			e += r
		}
		s = min(max(s, 0), r)
		e = min(max(e, 0), r)
		out := []int64{}
		for i := s; i < e; i++ {
			out = append(out, int64(in[0].Shape[i]))
		}
		return one(tensor.FromInt64([]int{len(out)}, out))
	}), nil
}

func newReshape(n *graph.Node, opset int64) (runtime.Kernel, error) {
	allowZero, err := n.AttrInt("allowzero", 0)
	if err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(_ *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		spec, err := ints(in[1])
		if err != nil {
			return nil, fmt.Errorf("shape: %v", err)
		}
		shape, err := reshapeDims(in[0].Shape, spec, allowZero != 0)
		if err != nil {
			return nil, err
		}
		return one(view(in[0], shape))
	}), nil
}

// reshapeDims resolves Reshape's 0 (copy the input dim, unless allowzero)
// and -1 (infer) entries and checks the element count.
func reshapeDims(in []int, spec []int64, allowZero bool) ([]int, error) {
	out := make([]int, len(spec))
	infer := -1
	known := 1
	for i, d := range spec {
		switch {
		case d == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("shape %v has more than one -1", spec)
			}
			infer = i
			continue
		case d == 0 && !allowZero:
			if i >= len(in) {
				return nil, fmt.Errorf("shape %v copies dim %d of an input of rank %d", spec, i, len(in))
			}
			out[i] = in[i]
		case d < 0:
			return nil, fmt.Errorf("shape %v has a negative dim", spec)
		case d > tensor.MaxElements:
			return nil, fmt.Errorf("shape %v is too large", spec)
		default:
			out[i] = int(d)
		}
		known *= out[i]
		if known > tensor.MaxElements {
			return nil, fmt.Errorf("shape %v is too large", spec)
		}
	}
	total := prod(in)
	if infer >= 0 {
		if known == 0 || total%known != 0 {
			return nil, fmt.Errorf("cannot reshape %v to %v", in, spec)
		}
		out[infer] = total / known
	} else if known != total {
		return nil, fmt.Errorf("cannot reshape %v (%d elements) to %v", in, total, spec)
	}
	return out, nil
}

func newFlatten(n *graph.Node, opset int64) (runtime.Kernel, error) {
	axis, err := n.AttrInt("axis", 1)
	if err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(_ *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		r := len(in[0].Shape)
		a := int(axis)
		if axis < 0 {
			a += r
		}
		if a < 0 || a > r {
			return nil, fmt.Errorf("axis %d out of range for rank %d", axis, r)
		}
		return one(view(in[0], []int{prod(in[0].Shape[:a]), prod(in[0].Shape[a:])}))
	}), nil
}

func newSqueeze(n *graph.Node, opset int64) (runtime.Kernel, error) {
	return runtime.KernelFunc(func(_ *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		axes, have, err := axesArg(n, in, 1, opset >= 13)
		if err != nil {
			return nil, err
		}
		drop := make([]bool, len(x.Shape))
		if !have {
			for i, d := range x.Shape {
				drop[i] = d == 1
			}
		}
		for _, a := range axes {
			i, err := normAxis(a, len(x.Shape))
			if err != nil {
				return nil, err
			}
			if x.Shape[i] != 1 {
				return nil, fmt.Errorf("cannot squeeze axis %d of shape %v", a, x.Shape)
			}
			drop[i] = true
		}
		shape := []int{}
		for i, d := range x.Shape {
			if !drop[i] {
				shape = append(shape, d)
			}
		}
		return one(view(x, shape))
	}), nil
}

func newUnsqueeze(n *graph.Node, opset int64) (runtime.Kernel, error) {
	return runtime.KernelFunc(func(_ *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		axes, have, err := axesArg(n, in, 1, opset >= 13)
		if err != nil {
			return nil, err
		}
		if !have {
			return nil, fmt.Errorf("axes are missing")
		}
		r := len(x.Shape) + len(axes)
		ins := make([]bool, r)
		for _, a := range axes {
			i, err := normAxis(a, r)
			if err != nil {
				return nil, err
			}
			if ins[i] {
				return nil, fmt.Errorf("axis %d repeated", a)
			}
			ins[i] = true
		}
		shape := make([]int, r)
		j := 0
		for i := range shape {
			if ins[i] {
				shape[i] = 1
			} else {
				shape[i] = x.Shape[j]
				j++
			}
		}
		return one(view(x, shape))
	}), nil
}

// newDropout is inference Dropout: the identity, and an all-true mask when
// the node asks for one. Training mode is refused: its output is random.
func newDropout(n *graph.Node, opset int64) (runtime.Kernel, error) {
	wantMask := len(n.Outputs) > 1 && n.Outputs[1] != nil
	return runtime.KernelFunc(func(_ *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		if t, err := optional(in, 2); err != nil {
			return nil, err
		} else if t != nil {
			if t.DType != tensor.Bool || t.Len() != 1 {
				return nil, fmt.Errorf("training_mode must be a bool scalar")
			}
			if t.Bools()[0] {
				ratio := 0.5
				if r, err := optional(in, 1); err == nil && r != nil {
					ratio, _ = scalarFloat(r)
				}
				if ratio != 0 {
					return nil, fmt.Errorf("training mode (random dropout) is not supported")
				}
			}
		}
		outs := []*tensor.Tensor{in[0]}
		if wantMask {
			m := tensor.MustNew(tensor.Bool, in[0].Shape)
			for i := range m.Bools() {
				m.Bools()[i] = true
			}
			outs = append(outs, m)
		}
		return outs, nil
	}), nil
}

func newTranspose(n *graph.Node, opset int64) (runtime.Kernel, error) {
	perm, err := n.AttrInts("perm", nil)
	if err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		r := len(x.Shape)
		p := make([]int, r)
		if perm == nil {
			for i := range p {
				p[i] = r - 1 - i
			}
		} else {
			if len(perm) != r {
				return nil, fmt.Errorf("perm %v for rank %d", perm, r)
			}
			seen := make([]bool, r)
			for i, a := range perm {
				if a < 0 || a >= int64(r) || seen[a] {
					return nil, fmt.Errorf("perm %v is not a permutation", perm)
				}
				seen[a] = true
				p[i] = int(a)
			}
		}
		out, err := transpose(ctx, x, p)
		if err != nil {
			return nil, err
		}
		return one(out)
	}), nil
}

func transpose(ctx *runtime.Context, x *tensor.Tensor, p []int) (*tensor.Tensor, error) {
	ist := stridesOf(x.Shape)
	shape := make([]int, len(p))
	st := make([]int, len(p))
	for i, a := range p {
		shape[i] = x.Shape[a]
		st[i] = ist[a]
	}
	src, es, err := raw(x)
	if err != nil {
		return nil, err
	}
	out, dst, err := newRaw(ctx, x.DType, shape)
	if err != nil {
		return nil, err
	}
	return out, stridedBytes(dst, src, es, 0, shape, st)
}

func newSlice(n *graph.Node, opset int64) (runtime.Kernel, error) {
	var aStarts, aEnds, aAxes []int64
	if opset < 10 {
		var err error
		if aStarts, err = n.AttrInts("starts", nil); err != nil {
			return nil, err
		}
		if aEnds, err = n.AttrInts("ends", nil); err != nil {
			return nil, err
		}
		if aAxes, err = n.AttrInts("axes", nil); err != nil {
			return nil, err
		}
	}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		starts, ends, axes := aStarts, aEnds, aAxes
		var steps []int64
		if opset >= 10 {
			if err := need(in, 3); err != nil {
				return nil, err
			}
			var err error
			if starts, err = ints(in[1]); err != nil {
				return nil, err
			}
			if ends, err = ints(in[2]); err != nil {
				return nil, err
			}
			for i, p := range []*[]int64{&axes, &steps} {
				t, err := optional(in, 3+i)
				if err != nil {
					return nil, err
				}
				if t != nil {
					if *p, err = ints(t); err != nil {
						return nil, err
					}
				}
			}
		}
		out, err := slice(ctx, in[0], starts, ends, axes, steps)
		if err != nil {
			return nil, err
		}
		return one(out)
	}), nil
}

func slice(ctx *runtime.Context, x *tensor.Tensor, starts, ends, axes, steps []int64) (*tensor.Tensor, error) {
	r := len(x.Shape)
	if len(starts) != len(ends) || (axes != nil && len(axes) != len(starts)) || (steps != nil && len(steps) != len(starts)) {
		return nil, fmt.Errorf("starts %v, ends %v, axes %v, steps %v differ in length", starts, ends, axes, steps)
	}
	shape := append([]int(nil), x.Shape...)
	ist := stridesOf(x.Shape)
	st := append([]int(nil), ist...)
	base := 0
	done := make([]bool, r)
	for i := range starts {
		a := int64(i)
		if axes != nil {
			a = axes[i]
		}
		ax, err := normAxis(a, r)
		if err != nil {
			return nil, err
		}
		if done[ax] {
			return nil, fmt.Errorf("axis %d repeated", a)
		}
		done[ax] = true
		step := int64(1)
		if steps != nil {
			step = steps[i]
		}
		if step == 0 {
			return nil, fmt.Errorf("step 0")
		}
		// A step beyond ±2^62 takes at most one element, like ±2^62
		// itself; clamping keeps the arithmetic below from overflowing.
		step = min(max(step, -1<<62), 1<<62)
		dim := int64(x.Shape[ax])
		s, e := starts[i], ends[i]
		if s < 0 {
			s += dim
		}
		if e < 0 {
			e += dim
		}
		var length int64
		if step > 0 {
			s = min(max(s, 0), dim)
			e = min(max(e, 0), dim)
			if e > s {
				length = (e - s + step - 1) / step
			}
		} else {
			s = min(max(s, -1), dim-1)
			e = min(max(e, -1), dim-1)
			if s > e {
				length = (s - e + (-step) - 1) / (-step)
			}
		}
		shape[ax] = int(length)
		if length > 0 {
			base += int(s) * ist[ax]
		}
		st[ax] = int(step) * ist[ax]
	}
	src, es, err := raw(x)
	if err != nil {
		return nil, err
	}
	out, dst, err := newRaw(ctx, x.DType, shape)
	if err != nil {
		return nil, err
	}
	return out, stridedBytes(dst, src, es, base, shape, st)
}

func expand(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := need(in, 2); err != nil {
		return nil, err
	}
	spec, err := ints(in[1])
	if err != nil {
		return nil, err
	}
	want := make([]int, len(spec))
	for i, d := range spec {
		if d < 0 || d > tensor.MaxElements {
			return nil, fmt.Errorf("bad shape %v", spec)
		}
		want[i] = int(d)
	}
	x := in[0]
	shape, err := broadcastShape(x.Shape, want)
	if err != nil {
		return nil, err
	}
	// Input strides aligned to the output, 0 where the input repeats.
	ist := stridesOf(x.Shape)
	st := make([]int, len(shape))
	off := len(shape) - len(x.Shape)
	for i := range x.Shape {
		if x.Shape[i] != 1 {
			st[off+i] = ist[i]
		}
	}
	src, es, err := raw(x)
	if err != nil {
		return nil, err
	}
	out, dst, err := newRaw(ctx, x.DType, shape)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{out}, stridedBytes(dst, src, es, 0, shape, st)
}

func tile(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := need(in, 2); err != nil {
		return nil, err
	}
	reps, err := ints(in[1])
	if err != nil {
		return nil, err
	}
	x := in[0]
	if len(reps) != len(x.Shape) {
		return nil, fmt.Errorf("repeats %v for rank %d", reps, len(x.Shape))
	}
	shape := make([]int, len(reps))
	for i, r := range reps {
		if r < 0 || r > tensor.MaxElements || (r > 0 && x.Shape[i] > tensor.MaxElements/int(r)) {
			return nil, fmt.Errorf("bad repeats %v for shape %v", reps, x.Shape)
		}
		shape[i] = x.Shape[i] * int(r)
	}
	src, es, err := raw(x)
	if err != nil {
		return nil, err
	}
	out, dst, err := newRaw(ctx, x.DType, shape)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{out}, tileBytes(dst, src, es, x.Shape, shape)
}

func newConcat(n *graph.Node, opset int64) (runtime.Kernel, error) {
	axis, err := n.AttrInt("axis", 1)
	if err != nil {
		return nil, err
	}
	if n.Attr("axis") == nil && opset >= 4 {
		return nil, fmt.Errorf("attribute axis is required")
	}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if len(in) == 0 {
			return nil, fmt.Errorf("no inputs")
		}
		if err := need(in, len(in)); err != nil {
			return nil, err
		}
		x0 := in[0]
		r := len(x0.Shape)
		ax, err := normAxis(axis, r)
		if err != nil {
			return nil, err
		}
		shape := append([]int(nil), x0.Shape...)
		shape[ax] = 0
		for i, t := range in {
			if t.DType != x0.DType || len(t.Shape) != r {
				return nil, fmt.Errorf("input %d is %v, input 0 is %v", i, t, x0)
			}
			for d := range t.Shape {
				if d != ax && t.Shape[d] != x0.Shape[d] {
					return nil, fmt.Errorf("input %d has shape %v, input 0 %v", i, t.Shape, x0.Shape)
				}
			}
			shape[ax] += t.Shape[ax]
		}
		out, dst, err := newRaw(ctx, x0.DType, shape)
		if err != nil {
			return nil, err
		}
		es := x0.DType.Size()
		outer := prod(shape[:ax])
		inner := prod(shape[ax+1:]) * es
		rowOut := shape[ax] * inner
		pos := 0
		for _, t := range in {
			src, _, _ := raw(t)
			blk := t.Shape[ax] * inner
			for o := 0; o < outer; o++ {
				copy(dst[o*rowOut+pos:o*rowOut+pos+blk], src[o*blk:(o+1)*blk])
			}
			pos += blk
		}
		return one(out)
	}), nil
}

func newSplit(n *graph.Node, opset int64) (runtime.Kernel, error) {
	axis, err := n.AttrInt("axis", 0)
	if err != nil {
		return nil, err
	}
	attrSplit, err := n.AttrInts("split", nil)
	if err != nil {
		return nil, err
	}
	numOut, err := n.AttrInt("num_outputs", 0)
	if err != nil {
		return nil, err
	}
	nout := len(n.Outputs)
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		ax, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return nil, err
		}
		dim := x.Shape[ax]
		split := attrSplit
		if opset >= 13 {
			t, err := optional(in, 1)
			if err != nil {
				return nil, err
			}
			split = nil
			if t != nil {
				if split, err = ints(t); err != nil {
					return nil, err
				}
			}
		}
		sizes := make([]int, nout)
		if split != nil {
			if len(split) != nout {
				return nil, fmt.Errorf("split %v for %d outputs", split, nout)
			}
			sum := 0
			for i, s := range split {
				if s < 0 || s > int64(dim) {
					return nil, fmt.Errorf("bad split %v for dim %d", split, dim)
				}
				sizes[i] = int(s)
				sum += int(s)
			}
			if sum != dim {
				return nil, fmt.Errorf("split %v does not sum to dim %d", split, dim)
			}
		} else {
			if numOut > 0 && int(numOut) != nout {
				return nil, fmt.Errorf("num_outputs %d but %d outputs", numOut, nout)
			}
			// Equal parts; with num_outputs the last may be smaller.
			chunk := (dim + nout - 1) / nout
			if numOut == 0 && dim%nout != 0 {
				return nil, fmt.Errorf("dim %d does not split into %d equal parts", dim, nout)
			}
			left := dim
			for i := range sizes {
				sizes[i] = min(chunk, left)
				left -= sizes[i]
			}
		}
		src, es, err := raw(x)
		if err != nil {
			return nil, err
		}
		outer := prod(x.Shape[:ax])
		inner := prod(x.Shape[ax+1:]) * es
		rowIn := dim * inner
		outs := make([]*tensor.Tensor, nout)
		pos := 0
		for i, s := range sizes {
			shape := append([]int(nil), x.Shape...)
			shape[ax] = s
			t, dst, err := newRaw(ctx, x.DType, shape)
			if err != nil {
				return nil, err
			}
			blk := s * inner
			for o := 0; o < outer; o++ {
				copy(dst[o*blk:(o+1)*blk], src[o*rowIn+pos:o*rowIn+pos+blk])
			}
			pos += blk
			outs[i] = t
		}
		return outs, nil
	}), nil
}

func newGather(n *graph.Node, opset int64) (runtime.Kernel, error) {
	axis, err := n.AttrInt("axis", 0)
	if err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x := in[0]
		ax, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return nil, err
		}
		idx, err := ints(in[1])
		if err != nil {
			return nil, fmt.Errorf("indices: %v", err)
		}
		dim := x.Shape[ax]
		shape := append(append(append([]int{}, x.Shape[:ax]...), in[1].Shape...), x.Shape[ax+1:]...)
		src, es, err := raw(x)
		if err != nil {
			return nil, err
		}
		out, dst, err := newRaw(ctx, x.DType, shape)
		if err != nil {
			return nil, err
		}
		outer := prod(x.Shape[:ax])
		inner := prod(x.Shape[ax+1:]) * es
		k := len(idx)
		for j, i := range idx {
			if i < -int64(dim) || i >= int64(dim) {
				return nil, fmt.Errorf("index %d (position %d) out of range for dim %d", i, j, dim)
			}
		}
		for o := 0; o < outer; o++ {
			for j, i := range idx {
				if i < 0 {
					i += int64(dim)
				}
				d := (o*k + j) * inner
				s := (o*dim + int(i)) * inner
				copy(dst[d:d+inner], src[s:s+inner])
			}
		}
		return one(out)
	}), nil
}

func newConstant(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Attrs) != 1 {
		return nil, fmt.Errorf("needs exactly one value attribute, has %d", len(n.Attrs))
	}
	a := n.Attrs[0]
	var t *tensor.Tensor
	switch {
	case a.Name == "value" && a.Type == graph.AttrTensor:
		t = a.T
	case a.Name == "value_float" && a.Type == graph.AttrFloat:
		t = tensor.Scalar(a.F)
	case a.Name == "value_floats" && a.Type == graph.AttrFloats:
		t = tensor.FromFloat32([]int{len(a.Floats)}, append([]float32(nil), a.Floats...))
	case a.Name == "value_int" && a.Type == graph.AttrInt:
		t = tensor.FromInt64([]int{}, []int64{a.I})
	case a.Name == "value_ints" && a.Type == graph.AttrInts:
		t = tensor.FromInt64([]int{len(a.Ints)}, append([]int64(nil), a.Ints...))
	case a.Name == "value_string" && a.Type == graph.AttrString:
		t = &tensor.Tensor{DType: tensor.String, Shape: []int{}, Data: []string{a.S}}
	case a.Name == "value_strings" && a.Type == graph.AttrStrings:
		t = &tensor.Tensor{DType: tensor.String, Shape: []int{len(a.Strings)}, Data: append([]string(nil), a.Strings...)}
	default:
		return nil, fmt.Errorf("unsupported attribute %q (%v)", a.Name, a.Type)
	}
	if t == nil {
		return nil, fmt.Errorf("attribute %q has no tensor", a.Name)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return runtime.KernelFunc(func(*runtime.Context, []*tensor.Tensor) ([]*tensor.Tensor, error) {
		return one(t)
	}), nil
}

func newConstantOfShape(n *graph.Node, opset int64) (runtime.Kernel, error) {
	v, err := n.AttrTensor("value")
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = tensor.FromFloat32([]int{1}, []float32{0})
	}
	if v.Len() != 1 || v.DType.Size() == 0 {
		return nil, fmt.Errorf("value must be one numeric element, got %v", v)
	}
	return runtime.KernelFunc(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		spec, err := ints(in[0])
		if err != nil {
			return nil, err
		}
		shape := make([]int, len(spec))
		for i, d := range spec {
			if d < 0 || d > tensor.MaxElements {
				return nil, fmt.Errorf("bad shape %v", spec)
			}
			shape[i] = int(d)
		}
		src, es, err := raw(v)
		if err != nil {
			return nil, err
		}
		out, dst, err := newRaw(ctx, v.DType, shape)
		if err != nil {
			return nil, err
		}
		for i := 0; i < len(dst); i += es {
			copy(dst[i:i+es], src)
		}
		return one(out)
	}), nil
}

func rangeOp(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := need(in, 3); err != nil {
		return nil, err
	}
	dt := in[0].DType
	for i := 1; i < 3; i++ {
		if in[i].DType != dt {
			return nil, fmt.Errorf("inputs have types %v and %v", dt, in[i].DType)
		}
	}
	if dt == tensor.Int64 || dt == tensor.Int32 || dt == tensor.Int16 {
		var v [3]int64
		for i := range v {
			if in[i].Len() != 1 {
				return nil, fmt.Errorf("input %d must be a scalar", i)
			}
			x, _ := ints(in[i])
			v[i] = x[0]
		}
		start, limit, delta := v[0], v[1], v[2]
		if delta == 0 {
			return nil, fmt.Errorf("delta is 0")
		}
		// Count in uint64: limit-start and |delta| can exceed int64.
		var cnt uint64
		switch {
		case delta > 0 && limit > start:
			d, s := uint64(limit)-uint64(start), uint64(delta)
			cnt = d/s + min(d%s, 1)
		case delta < 0 && limit < start:
			d, s := uint64(start)-uint64(limit), -uint64(delta)
			cnt = d/s + min(d%s, 1)
		}
		if cnt > tensor.MaxElements {
			return nil, fmt.Errorf("range of %d elements is too large", cnt)
		}
		if err := ctx.CheckAlloc(dt, []int{int(cnt)}); err != nil {
			return nil, err
		}
		out := tensor.MustNew(dt, []int{int(cnt)})
		for i := int64(0); i < int64(cnt); i++ {
			x := start + i*delta
			switch o := out.Data.(type) {
			case []int64:
				o[i] = x
			case []int32:
				o[i] = int32(x)
			case []int16:
				o[i] = int16(x)
			}
		}
		return one(out)
	}
	var v [3]float64
	for i := range v {
		var err error
		if v[i], err = scalarFloat(in[i]); err != nil {
			return nil, fmt.Errorf("input %d: %v", i, err)
		}
	}
	start, limit, delta := v[0], v[1], v[2]
	if dt == tensor.Float32 {
		// The ONNX reference computes in the input type.
		start, limit, delta = float64(float32(start)), float64(float32(limit)), float64(float32(delta))
	}
	if delta == 0 || math.IsNaN(start+limit+delta) {
		return nil, fmt.Errorf("bad range %v, %v, %v", start, limit, delta)
	}
	c := math.Ceil((limit - start) / delta)
	if c < 0 {
		c = 0
	}
	if c > tensor.MaxElements {
		return nil, fmt.Errorf("range of %g elements is too large", c)
	}
	cnt := int(c)
	if err := ctx.CheckAlloc(dt, []int{cnt}); err != nil {
		return nil, err
	}
	out := tensor.MustNew(dt, []int{cnt})
	switch o := out.Data.(type) {
	case []float32:
		s, d := float32(start), float32(delta)
		for i := range o {
			o[i] = s + float32(i)*d
		}
	case []float64:
		for i := range o {
			o[i] = start + float64(i)*delta
		}
	}
	return one(out)
}
