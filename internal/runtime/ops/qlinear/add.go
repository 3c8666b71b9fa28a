package qlinear

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/simd/q8"
	"github.com/qtool/qtool/internal/tensor"
)

// MicrosoftDomain is ONNX Runtime's contrib-op domain.
const MicrosoftDomain = "com.microsoft"

func init() {
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		runtime.Register(MicrosoftDomain, "QLinearAdd", dt, newQLinearAdd)
		runtime.Register(MicrosoftDomain, "QLinearMul", dt, newQLinearMul)
	}
}

// addKernel runs the elementwise binary ops QLinearAdd and QLinearMul.
type addKernel struct {
	node *graph.Node
	op   func(dst, a, b []uint8, p *q8.AddParams)
}

func newQLinearAdd(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) < 7 || len(n.Inputs) > 8 {
		return nil, fmt.Errorf("%v: QLinearAdd takes 7 or 8 inputs, got %d", n, len(n.Inputs))
	}
	return &addKernel{node: n, op: q8.AddU8}, nil
}

func newQLinearMul(n *graph.Node, opset int64) (runtime.Kernel, error) {
	if len(n.Inputs) < 7 || len(n.Inputs) > 8 {
		return nil, fmt.Errorf("%v: QLinearMul takes 7 or 8 inputs, got %d", n, len(n.Inputs))
	}
	return &addKernel{node: n, op: q8.MulU8}, nil
}

// Run is com.microsoft QLinearAdd/QLinearMul with numpy broadcasting, computed in
// spans the way ONNX Runtime's broadcaster cuts them (the innermost run of
// dimensions over which each operand is either whole or a single element),
// because a single-element operand takes a slightly different rounding path
// in its kernel.
func (k *addKernel) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.node
	a, b, p, err := binaryParams(n, in)
	if err != nil {
		return nil, err
	}
	shape, err := broadcastShape(a.Shape, b.Shape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	out, err := ctx.NewUninit(a.DType, shape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	ab, bb, ob := bytesOf(a), bytesOf(b), bytesOf(out)
	if len(ob) == 0 {
		return []*tensor.Tensor{out}, nil
	}
	sp := spans(a.Shape, b.Shape, shape)
	ctx.Parallel(sp.count, max(1, 16384/sp.length), func(lo, hi int) {
		for s := lo; s < hi; s++ {
			ao, bo := sp.offsets(s)
			av, bv := ab[ao:ao+1], bb[bo:bo+1]
			if sp.aWhole {
				av = ab[ao : ao+sp.length]
			}
			if sp.bWhole {
				bv = bb[bo : bo+sp.length]
			}
			k.op(ob[s*sp.length:(s+1)*sp.length], av, bv, p)
		}
	})
	return []*tensor.Tensor{out}, nil
}

func bytesOf(t *tensor.Tensor) []uint8 {
	if t.DType == tensor.Int8 {
		return u8View(t.I8())
	}
	return t.U8()
}

func broadcastShape(a, b []int) ([]int, error) {
	r := max(len(a), len(b))
	out := make([]int, r)
	for i := 0; i < r; i++ {
		da, db := 1, 1
		if j := i - (r - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (r - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	if _, err := checkedProduct(out...); err != nil {
		return nil, err
	}
	return out, nil
}

// spanPlan cuts the output into count runs of length elements; in each run
// an operand is either whole (aWhole) or one repeated element.
type spanPlan struct {
	count, length  int
	aWhole, bWhole bool
	outer          []int // output dims outside the run
	aStr, bStr     []int // operand element strides of those dims (0 = broadcast)
}

func spans(as, bs, out []int) *spanPlan {
	r := len(out)
	pad := func(s []int) []int {
		p := make([]int, r)
		for i := range p {
			p[i] = 1
			if j := i - (r - len(s)); j >= 0 {
				p[i] = s[j]
			}
		}
		return p
	}
	a, b := pad(as), pad(bs)
	// The run is the innermost dims sharing one (A whole, B whole) pattern;
	// dims of size 1 fit any pattern.
	cut := r
	aw, bw, set := true, true, false
	for i := r - 1; i >= 0; i-- {
		if out[i] == 1 {
			cut = i
			continue
		}
		pa, pb := a[i] != 1, b[i] != 1
		if set && (pa != aw || pb != bw) {
			break
		}
		aw, bw, set = pa, pb, true
		cut = i
	}
	if !set {
		aw, bw = true, true
	}
	sp := &spanPlan{length: 1, aWhole: aw, bWhole: bw, count: 1}
	for i := cut; i < r; i++ {
		sp.length *= out[i]
	}
	sa, sb := sp.length, sp.length
	if !aw {
		sa = 1
	}
	if !bw {
		sb = 1
	}
	n := cut
	sp.outer = out[:n]
	sp.aStr, sp.bStr = make([]int, n), make([]int, n)
	for i := n - 1; i >= 0; i-- {
		if a[i] != 1 {
			sp.aStr[i] = sa
		}
		if b[i] != 1 {
			sp.bStr[i] = sb
		}
		sa *= a[i]
		sb *= b[i]
		sp.count *= out[i]
	}
	return sp
}

// offsets returns the operand element offsets where run s starts.
func (sp *spanPlan) offsets(s int) (ao, bo int) {
	for i := len(sp.outer) - 1; i >= 0; i-- {
		x := s % sp.outer[i]
		s /= sp.outer[i]
		ao += x * sp.aStr[i]
		bo += x * sp.bStr[i]
	}
	return
}
