package nn

import (
	"fmt"
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	register("", "BatchNormalization", newBatchNorm)
	register("", "InstanceNormalization", newInstanceNorm)
	register("", "LayerNormalization", newLayerNorm)
	register("", "GroupNormalization", newGroupNorm)
}

// Statistics are accumulated in float64: the node tests' references are
// computed by NumPy, and a float32 running sum over large planes drifts by
// more than their tolerance.

// meanVar returns the mean and population variance of x.
func meanVar(x []float32) (mean, variance float64) {
	if len(x) == 0 {
		return 0, 0
	}
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	mean = s / float64(len(x))
	var q float64
	for _, v := range x {
		d := float64(v) - mean
		q += d * d
	}
	return mean, q / float64(len(x))
}

type batchNorm struct {
	n        *graph.Node
	eps      float32
	momentum float32
	training bool
}

func newBatchNorm(n *graph.Node, opset int64) (runtime.Kernel, error) {
	b := &batchNorm{n: n}
	var err error
	if b.eps, err = n.AttrFloat("epsilon", 1e-5); err != nil {
		return nil, err
	}
	if b.momentum, err = n.AttrFloat("momentum", 0.9); err != nil {
		return nil, err
	}
	tm, err := n.AttrInt("training_mode", 0)
	if err != nil {
		return nil, err
	}
	// Before opset 14 training was signalled by asking for the extra outputs
	// (opset 9-13) or by is_test=0 (older); in inference graphs only Y is
	// used, and that is what we compute then.
	b.training = tm != 0
	if opset < 14 && opset >= 9 && wantOutput(n, 1) {
		b.training = true
	}
	if spatial, err := n.AttrInt("spatial", 1); err != nil {
		return nil, err
	} else if spatial != 1 {
		return nil, fmt.Errorf("%v: spatial=0 is not supported", n)
	}
	return b, nil
}

func (b *batchNorm) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := b.n
	var ts [5]*tensor.Tensor
	for i := range ts {
		t, err := f32In(n, in, i)
		if err != nil {
			return nil, err
		}
		ts[i] = t
	}
	x := ts[0]
	if x.Rank() < 2 {
		return nil, fmt.Errorf("%v: input %v must have rank >= 2", n, x.Shape)
	}
	N, C := x.Shape[0], x.Shape[1]
	for i := 1; i < 5; i++ {
		if ts[i].Len() != C {
			return nil, fmt.Errorf("%v: input %d has %d values, want %d", n, i, ts[i].Len(), C)
		}
	}
	scale, bias, mean, variance := ts[1].F32(), ts[2].F32(), ts[3].F32(), ts[4].F32()
	size := prod(x.Shape[2:])
	y, err := newF32(ctx, n, x.Shape)
	if err != nil {
		return nil, err
	}
	xd, yd := x.F32(), y.F32()
	outs := []*tensor.Tensor{y}
	useMean, useVar := mean, variance
	if b.training {
		// Batch statistics over N and the spatial dims, population variance.
		bm := make([]float32, C)
		bv := make([]float32, C)
		cnt := float64(N * size)
		for c := 0; c < C; c++ {
			var s float64
			for img := 0; img < N; img++ {
				for _, v := range xd[(img*C+c)*size : (img*C+c+1)*size] {
					s += float64(v)
				}
			}
			m := s / cnt
			var q float64
			for img := 0; img < N; img++ {
				for _, v := range xd[(img*C+c)*size : (img*C+c+1)*size] {
					d := float64(v) - m
					q += d * d
				}
			}
			bm[c], bv[c] = float32(m), float32(q/cnt)
		}
		useMean, useVar = bm, bv
		rm, _ := newF32(ctx, n, []int{C})
		rv, _ := newF32(ctx, n, []int{C})
		for c := 0; c < C; c++ {
			rm.F32()[c] = mean[c]*b.momentum + bm[c]*(1-b.momentum)
			rv.F32()[c] = variance[c]*b.momentum + bv[c]*(1-b.momentum)
		}
		outs = append(outs, rm, rv)
	}
	mul := make([]float32, C)
	add := make([]float32, C)
	for c := 0; c < C; c++ {
		mul[c] = scale[c] / float32(math.Sqrt(float64(useVar[c])+float64(b.eps)))
		add[c] = bias[c] - useMean[c]*mul[c]
	}
	ctx.Parallel(N*C, max(1, 4096/max(1, size)), func(p0, p1 int) {
		for p := p0; p < p1; p++ {
			c := p % C
			m, a := mul[c], add[c]
			src := xd[p*size : (p+1)*size]
			dst := yd[p*size : (p+1)*size]
			for i, v := range src {
				dst[i] = v*m + a
			}
		}
	})
	return outs, nil
}

type instanceNorm struct {
	n   *graph.Node
	eps float32
}

func newInstanceNorm(n *graph.Node, opset int64) (runtime.Kernel, error) {
	eps, err := n.AttrFloat("epsilon", 1e-5)
	if err != nil {
		return nil, err
	}
	return &instanceNorm{n: n, eps: eps}, nil
}

func (k *instanceNorm) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.n
	x, err := f32In(n, in, 0)
	if err != nil {
		return nil, err
	}
	s, err := f32In(n, in, 1)
	if err != nil {
		return nil, err
	}
	b, err := f32In(n, in, 2)
	if err != nil {
		return nil, err
	}
	if x.Rank() < 2 {
		return nil, fmt.Errorf("%v: input %v must have rank >= 2", n, x.Shape)
	}
	N, C := x.Shape[0], x.Shape[1]
	if s.Len() != C || b.Len() != C {
		return nil, fmt.Errorf("%v: scale and bias need %d values", n, C)
	}
	size := prod(x.Shape[2:])
	y, err := newF32(ctx, n, x.Shape)
	if err != nil {
		return nil, err
	}
	xd, yd, sd, bd := x.F32(), y.F32(), s.F32(), b.F32()
	ctx.Parallel(N*C, 1, func(p0, p1 int) {
		for p := p0; p < p1; p++ {
			c := p % C
			normalize(xd[p*size:(p+1)*size], yd[p*size:(p+1)*size], k.eps, sd[c], bd[c])
		}
	})
	return []*tensor.Tensor{y}, nil
}

// normalize writes (x - mean)/sqrt(var + eps)·scale + bias and returns the
// mean and 1/sqrt(var + eps).
func normalize(x, y []float32, eps, scale, bias float32) (float32, float32) {
	m, v := meanVar(x)
	inv := 1 / math.Sqrt(v+float64(eps))
	mul := float32(inv) * scale
	add := bias - float32(m)*mul
	for i, t := range x {
		y[i] = t*mul + add
	}
	return float32(m), float32(inv)
}

type layerNorm struct {
	n    *graph.Node
	axis int
	eps  float32
}

func newLayerNorm(n *graph.Node, opset int64) (runtime.Kernel, error) {
	axis, err := n.AttrInt("axis", -1)
	if err != nil {
		return nil, err
	}
	eps, err := n.AttrFloat("epsilon", 1e-5)
	if err != nil {
		return nil, err
	}
	if st, err := n.AttrInt("stash_type", 1); err != nil {
		return nil, err
	} else if st != 1 && st != int64(tensor.Float64) {
		return nil, fmt.Errorf("%v: stash_type %d is not supported", n, st)
	}
	if axis < -1<<20 || axis > 1<<20 {
		return nil, fmt.Errorf("%v: axis %d out of range", n, axis)
	}
	return &layerNorm{n: n, axis: int(axis), eps: eps}, nil
}

func (k *layerNorm) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.n
	x, err := f32In(n, in, 0)
	if err != nil {
		return nil, err
	}
	s, err := f32In(n, in, 1)
	if err != nil {
		return nil, err
	}
	b, err := optF32In(n, in, 2)
	if err != nil {
		return nil, err
	}
	axis, err := normAxis(n, k.axis, x.Rank())
	if err != nil {
		return nil, err
	}
	outer, inner := prod(x.Shape[:axis]), prod(x.Shape[axis:])
	// Scale and bias broadcast (numpy-style) against the normalized dims.
	sc, err := tensor.BroadcastF32(s, x.Shape[axis:])
	if err != nil {
		return nil, fmt.Errorf("%v: scale: %v", n, err)
	}
	var bi []float32
	if b != nil {
		if bi, err = tensor.BroadcastF32(b, x.Shape[axis:]); err != nil {
			return nil, fmt.Errorf("%v: B: %v", n, err)
		}
	}
	y, err := newF32(ctx, n, x.Shape)
	if err != nil {
		return nil, err
	}
	statShape := append([]int(nil), x.Shape...)
	for i := axis; i < len(statShape); i++ {
		statShape[i] = 1
	}
	mean, _ := newF32(ctx, n, statShape)
	istd, _ := newF32(ctx, n, statShape)
	xd, yd := x.F32(), y.F32()
	ctx.Parallel(outer, max(1, 4096/max(1, inner)), func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			src := xd[r*inner : (r+1)*inner]
			dst := yd[r*inner : (r+1)*inner]
			m, v := meanVar(src)
			inv := 1 / math.Sqrt(v+float64(k.eps))
			for i, t := range src {
				o := float32((float64(t) - m) * inv)
				o *= sc[i]
				if bi != nil {
					o += bi[i]
				}
				dst[i] = o
			}
			mean.F32()[r] = float32(m)
			istd.F32()[r] = float32(inv)
		}
	})
	return []*tensor.Tensor{y, mean, istd}, nil
}

type groupNorm struct {
	n      *graph.Node
	eps    float32
	groups int
	opset  int64
}

func newGroupNorm(n *graph.Node, opset int64) (runtime.Kernel, error) {
	eps, err := n.AttrFloat("epsilon", 1e-5)
	if err != nil {
		return nil, err
	}
	g, err := n.AttrInt("num_groups", 0)
	if err != nil {
		return nil, err
	}
	if g < 1 || g > 1<<30 {
		return nil, fmt.Errorf("%v: num_groups %d must be positive", n, g)
	}
	if st, err := n.AttrInt("stash_type", 1); err != nil {
		return nil, err
	} else if st != 1 && st != int64(tensor.Float64) {
		return nil, fmt.Errorf("%v: stash_type %d is not supported", n, st)
	}
	return &groupNorm{n: n, eps: eps, groups: int(g), opset: opset}, nil
}

func (k *groupNorm) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.n
	x, err := f32In(n, in, 0)
	if err != nil {
		return nil, err
	}
	s, err := f32In(n, in, 1)
	if err != nil {
		return nil, err
	}
	b, err := f32In(n, in, 2)
	if err != nil {
		return nil, err
	}
	if x.Rank() < 2 {
		return nil, fmt.Errorf("%v: input %v must have rank >= 2", n, x.Shape)
	}
	N, C := x.Shape[0], x.Shape[1]
	G := k.groups
	if C%G != 0 {
		return nil, fmt.Errorf("%v: %d channels do not split into %d groups", n, C, G)
	}
	// Opset 18 has one scale and bias per group; opset 21 one per channel.
	perChannel := s.Len() == C && b.Len() == C
	perGroup := s.Len() == G && b.Len() == G
	if !perChannel && !perGroup || (k.opset >= 21 && !perChannel) {
		return nil, fmt.Errorf("%v: scale %v and bias %v fit neither %d channels nor %d groups", n, s.Shape, b.Shape, C, G)
	}
	if perGroup && perChannel && k.opset < 21 {
		perChannel = false
	}
	size := prod(x.Shape[2:])
	cg := C / G
	y, err := newF32(ctx, n, x.Shape)
	if err != nil {
		return nil, err
	}
	xd, yd, sd, bd := x.F32(), y.F32(), s.F32(), b.F32()
	ctx.Parallel(N*G, 1, func(p0, p1 int) {
		for p := p0; p < p1; p++ {
			grp := p % G
			lo, hi := p*cg*size, (p+1)*cg*size
			m, v := meanVar(xd[lo:hi])
			inv := 1 / math.Sqrt(v+float64(k.eps))
			for c := 0; c < cg; c++ {
				sc, bi := sd[grp], bd[grp]
				if perChannel {
					sc, bi = sd[grp*cg+c], bd[grp*cg+c]
				}
				src := xd[lo+c*size : lo+(c+1)*size]
				dst := yd[lo+c*size : lo+(c+1)*size]
				for i, t := range src {
					dst[i] = float32((float64(t)-m)*inv)*sc + bi
				}
			}
		}
	})
	return []*tensor.Tensor{y}, nil
}
