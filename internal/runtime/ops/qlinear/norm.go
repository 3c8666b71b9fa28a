package qlinear

import (
	"fmt"
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/simd/q8"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		for _, op := range []string{"BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization"} {
			runtime.Register(QtoolDomain, "QLinear"+op, dt, newQLinearNorm(op))
		}
	}
}

// qlinearNorm is com.qtool QLinearBatchNormalization, QLinearInstance-,
// QLinearLayer- and QLinearGroupNormalization: the ONNX normalization of
// the same name on a quantized tensor, inputs X, X_scale, X_zero_point,
// Y_scale, Y_zero_point (per tensor, Y of X's type) and then the float op's
// inputs after X (scale, B, and mean/var for BatchNormalization), with the
// float op's attributes (and onnx_opset, the ai.onnx opset, which decides
// GroupNormalization's per-group or per-channel scale).
//
// The QDQ rewrite emits them for DQ → norm → Q. Nothing float the size of
// the tensor is made: the statistics come from a 256-bin histogram of the
// codes of each normalized group (int32 counts, then 256 float64 terms),
// and where a group's elements share their affine parameters the output is
// a 256-entry table of codes applied with q8.LookupU8. Every float step
// after the statistics is the float kernel's (internal/runtime/ops/nn), in
// its order, and quantization is ONNX QuantizeLinear's, so the result is
// the unfused DQ → norm → Q path's except where the histogram's summation
// order moves the mean or variance across a rounding boundary.
type qlinearNorm struct {
	node  *graph.Node
	op    string
	eps   float32
	axis  int64 // LayerNormalization
	group int   // GroupNormalization
	opset int64
	bn    *bnPlan // BatchNormalization's tables when its inputs are constants
}

func newQLinearNorm(op string) runtime.Factory {
	return func(n *graph.Node, opset int64) (runtime.Kernel, error) {
		k := &qlinearNorm{node: n, op: op}
		want := map[string][2]int{"BatchNormalization": {9, 9}, "InstanceNormalization": {7, 7},
			"LayerNormalization": {6, 7}, "GroupNormalization": {7, 7}}[op]
		if len(n.Inputs) < want[0] || len(n.Inputs) > want[1] || len(n.Outputs) != 1 {
			return nil, fmt.Errorf("%v: QLinear%s takes %d to %d inputs and 1 output, got %d", n, op, want[0], want[1], len(n.Inputs))
		}
		var err error
		if k.eps, err = n.AttrFloat("epsilon", 1e-5); err != nil {
			return nil, err
		}
		if k.opset, err = n.AttrInt("onnx_opset", 21); err != nil {
			return nil, err
		}
		switch op {
		case "BatchNormalization":
			if tm, err := n.AttrInt("training_mode", 0); err != nil || tm != 0 {
				return nil, fmt.Errorf("%v: training_mode is not supported", n)
			}
			if sp, err := n.AttrInt("spatial", 1); err != nil || sp != 1 {
				return nil, fmt.Errorf("%v: spatial=0 is not supported", n)
			}
		case "LayerNormalization":
			if k.axis, err = n.AttrInt("axis", -1); err != nil {
				return nil, err
			}
		case "GroupNormalization":
			g, err := n.AttrInt("num_groups", 0)
			if err != nil {
				return nil, err
			}
			if g < 1 || g > 1<<30 {
				return nil, fmt.Errorf("%v: num_groups %d must be positive", n, g)
			}
			k.group = int(g)
		}
		if op == "BatchNormalization" {
			k.bn = k.newBNPlan()
		}
		return k, nil
	}
}

// bnPlan is BatchNormalization's per-channel tables, built at plan time
// when every input but X is a constant (they are then the same every run).
type bnPlan struct {
	consts [8]*tensor.Tensor // inputs 1..8 (nil: absent)
	tabs   [2][]uint8        // 256 bytes per channel, uint8 and int8 data (nil: not built)
}

func (k *qlinearNorm) newBNPlan() *bnPlan {
	n := k.node
	p := &bnPlan{}
	in := make([]*tensor.Tensor, len(n.Inputs))
	for i := 1; i <= 8; i++ {
		v := n.Input(i)
		if v == nil {
			continue
		}
		if v.Const == nil {
			return nil
		}
		in[i], p.consts[i-1] = v.Const, v.Const
	}
	if in[5] == nil {
		return nil
	}
	C := in[5].Len()
	for j, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		c, err := k.codes(in, dt)
		if err != nil {
			continue
		}
		mul, add, err := k.bnAffine(in, C)
		if err != nil {
			return nil
		}
		p.tabs[j] = make([]uint8, 256*C)
		for ch := range C {
			bnTable((*[256]uint8)(p.tabs[j][256*ch:]), c, mul[ch], add[ch])
		}
	}
	if p.tabs[0] == nil && p.tabs[1] == nil {
		return nil
	}
	return p
}

// get returns the plan-time tables for a run on data of type dt (C
// channels) with inputs in, or nil when they do not apply.
func (p *bnPlan) get(in []*tensor.Tensor, dt tensor.DType, C int) []uint8 {
	if p == nil {
		return nil
	}
	for i, c := range p.consts {
		if input(in, i+1) != c {
			return nil
		}
	}
	t := p.tabs[0]
	if dt == tensor.Int8 {
		t = p.tabs[1]
	}
	if len(t) != 256*C {
		return nil
	}
	return t
}

// bnTable is the table of one channel: the float kernel's v·mul + add on
// the dequantized code, quantized.
func bnTable(tab *[256]uint8, c *codeIO, m, a float32) {
	for b := range tab {
		tab[b] = c.quant(c.deq[b]*m + a)
	}
}

// codeIO is the dequantization table of X and the quantization of Y.
type codeIO struct {
	deq    [256]float32 // indexed by the byte of a code
	ys     float32
	yz     int32
	lo, hi float64
}

func newCodeIO(dt tensor.DType, xs float32, xz int32, ys float32, yz int32) *codeIO {
	c := &codeIO{ys: ys, yz: yz, lo: 0, hi: 255}
	if dt == tensor.Int8 {
		c.lo, c.hi = -128, 127
	}
	for b := range c.deq {
		q := int32(b)
		if dt == tensor.Int8 {
			q = int32(int8(uint8(b)))
		}
		c.deq[b] = float32(q-xz) * xs
	}
	return c
}

// quant is ONNX QuantizeLinear of one value (float32 division, half to
// even, NaN to the minimum), returned as the code's byte.
func (c *codeIO) quant(v float32) uint8 {
	t := v / c.ys
	if t != t {
		return uint8(int32(c.lo))
	}
	r := math.RoundToEven(float64(t)) + float64(c.yz)
	r = max(min(r, c.hi), c.lo)
	return uint8(int32(r))
}

// mapRun writes quant(f(deq[b])) for every code b of src: through a table
// when the run is long enough to pay for 256 evaluations.
func (c *codeIO) mapRun(dst, src []uint8, f func(float32) float32) {
	if len(src) >= 256 {
		tab := tablePool.Get().(*[256]uint8)
		defer tablePool.Put(tab)
		for b := range tab {
			tab[b] = c.quant(f(c.deq[b]))
		}
		q8.LookupU8(dst, src, tab)
		return
	}
	for i, b := range src {
		dst[i] = c.quant(f(c.deq[b]))
	}
}

// meanVar is the mean and population variance of the dequantized codes,
// from their histogram.
func (c *codeIO) meanVar(src []uint8) (float64, float64) {
	if len(src) == 0 {
		return 0, 0
	}
	var cnt [256]int
	for _, b := range src {
		cnt[b]++
	}
	var s float64
	for b, k := range cnt {
		if k != 0 {
			s += float64(k) * float64(c.deq[b])
		}
	}
	m := s / float64(len(src))
	var q float64
	for b, k := range cnt {
		if k != 0 {
			d := float64(c.deq[b]) - m
			q += float64(k) * d * d
		}
	}
	return m, q / float64(len(src))
}

func f32Param(n *graph.Node, in []*tensor.Tensor, i int, what string, optional bool) ([]float32, *tensor.Tensor, error) {
	t := input(in, i)
	if t == nil {
		if optional {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("%v: input %s is missing", n, what)
	}
	if t.DType != tensor.Float32 {
		return nil, nil, fmt.Errorf("%v: input %s is %v, want float32", n, what, t.DType)
	}
	if err := t.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%v: input %s: %v", n, what, err)
	}
	return t.F32(), t, nil
}

func (k *qlinearNorm) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.node
	x, err := int8In(n, in, 0, "X")
	if err != nil {
		return nil, err
	}
	c, err := k.codes(in, x.DType)
	if err != nil {
		return nil, err
	}
	y, err := ctx.NewUninit(x.DType, x.Shape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	src, dst := bytesOf(x), bytesOf(y)
	switch k.op {
	case "LayerNormalization":
		err = k.layer(ctx, c, x.Shape, src, dst, in)
	default:
		err = k.channels(ctx, c, x.Shape, src, dst, in)
	}
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{y}, nil
}

// codes reads X's and Y's quantization parameters for data of type dt.
func (k *qlinearNorm) codes(in []*tensor.Tensor, dt tensor.DType) (*codeIO, error) {
	n := k.node
	xs, _, err := scalesIn(n, in, 1, "X_scale", 1)
	if err != nil {
		return nil, err
	}
	xz, err := zeroPointsIn(n, in, 2, "X_zero_point", dt, 1)
	if err != nil {
		return nil, err
	}
	ys, _, err := scalesIn(n, in, 3, "Y_scale", 1)
	if err != nil {
		return nil, err
	}
	yz, err := zeroPointsIn(n, in, 4, "Y_zero_point", dt, 1)
	if err != nil {
		return nil, err
	}
	if len(xs) != 1 || len(xz) != 1 || len(ys) != 1 || len(yz) != 1 {
		return nil, fmt.Errorf("%v: quantization parameters must be per tensor", n)
	}
	if !(xs[0] > 0) || !(ys[0] > 0) {
		return nil, fmt.Errorf("%v: scales must be positive", n)
	}
	return newCodeIO(dt, xs[0], xz[0], ys[0], yz[0]), nil
}

// bnAffine reads BatchNormalization's parameters for C channels and
// returns the float kernel's per-channel multiplier and addend.
func (k *qlinearNorm) bnAffine(in []*tensor.Tensor, C int) (mul, add []float32, err error) {
	n := k.node
	var ps [4][]float32
	for j, what := range []string{"scale", "B", "mean", "var"} {
		if ps[j], _, err = f32Param(n, in, 5+j, what, false); err != nil {
			return nil, nil, err
		}
	}
	for _, p := range ps {
		if len(p) != C {
			return nil, nil, fmt.Errorf("%v: parameters need %d values, got %d", n, C, len(p))
		}
	}
	scale, bias, mean, variance := ps[0], ps[1], ps[2], ps[3]
	mul = make([]float32, C)
	add = make([]float32, C)
	for ch := 0; ch < C; ch++ {
		mul[ch] = scale[ch] / float32(math.Sqrt(float64(variance[ch])+float64(k.eps)))
		add[ch] = bias[ch] - mean[ch]*mul[ch]
	}
	return mul, add, nil
}

// channels runs the three normalizations over NC… tensors.
func (k *qlinearNorm) channels(ctx *runtime.Context, c *codeIO, shape []int, src, dst []uint8, in []*tensor.Tensor) error {
	n := k.node
	if len(shape) < 2 {
		return fmt.Errorf("%v: input %v must have rank >= 2", n, shape)
	}
	N, C := shape[0], shape[1]
	size, err := checkedProduct(shape[2:]...)
	if err != nil {
		return fmt.Errorf("%v: %v", n, err)
	}
	scale, _, err := f32Param(n, in, 5, "scale", false)
	if err != nil {
		return err
	}
	bias, _, err := f32Param(n, in, 6, "B", false)
	if err != nil {
		return err
	}
	switch k.op {
	case "BatchNormalization":
		mul, add, err := k.bnAffine(in, C)
		if err != nil {
			return err
		}
		dt := tensor.Uint8
		if c.lo < 0 {
			dt = tensor.Int8
		}
		if tabs := k.bn.get(in, dt, C); tabs != nil {
			ctx.Parallel(N*C, max(1, 4096/max(1, size)), func(p0, p1 int) {
				for p := p0; p < p1; p++ {
					ch := p % C
					q8.LookupU8(dst[p*size:(p+1)*size], src[p*size:(p+1)*size], (*[256]uint8)(tabs[256*ch:]))
				}
			})
			return nil
		}
		if size < 256 && N > 1 {
			// One table per channel over all images.
			tab := tablePool.Get().(*[256]uint8)
			defer tablePool.Put(tab)
			for ch := 0; ch < C; ch++ {
				bnTable(tab, c, mul[ch], add[ch])
				for img := 0; img < N; img++ {
					p := img*C + ch
					q8.LookupU8(dst[p*size:(p+1)*size], src[p*size:(p+1)*size], tab)
				}
			}
			return nil
		}
		ctx.Parallel(N*C, max(1, 4096/max(1, size)), func(p0, p1 int) {
			for p := p0; p < p1; p++ {
				m, a := mul[p%C], add[p%C]
				c.mapRun(dst[p*size:(p+1)*size], src[p*size:(p+1)*size], func(v float32) float32 { return v*m + a })
			}
		})
	case "InstanceNormalization":
		if len(scale) != C || len(bias) != C {
			return fmt.Errorf("%v: scale and bias need %d values", n, C)
		}
		ctx.Parallel(N*C, 1, func(p0, p1 int) {
			for p := p0; p < p1; p++ {
				ch := p % C
				s, d := src[p*size:(p+1)*size], dst[p*size:(p+1)*size]
				m, v := c.meanVar(s)
				inv := 1 / math.Sqrt(v+float64(k.eps))
				mul := float32(inv) * scale[ch]
				add := bias[ch] - float32(m)*mul
				c.mapRun(d, s, func(t float32) float32 { return t*mul + add })
			}
		})
	case "GroupNormalization":
		G := k.group
		if C%G != 0 {
			return fmt.Errorf("%v: %d channels do not split into %d groups", n, C, G)
		}
		perChannel := len(scale) == C && len(bias) == C
		perGroup := len(scale) == G && len(bias) == G
		if !perChannel && !perGroup || (k.opset >= 21 && !perChannel) {
			return fmt.Errorf("%v: scale and bias fit neither %d channels nor %d groups", n, C, G)
		}
		if perGroup && perChannel && k.opset < 21 {
			perChannel = false
		}
		cg := C / G
		ctx.Parallel(N*G, 1, func(p0, p1 int) {
			for p := p0; p < p1; p++ {
				grp := p % G
				lo, hi := p*cg*size, (p+1)*cg*size
				m, v := c.meanVar(src[lo:hi])
				inv := 1 / math.Sqrt(v+float64(k.eps))
				for ch := 0; ch < cg; ch++ {
					sc, bi := scale[grp], bias[grp]
					if perChannel {
						sc, bi = scale[grp*cg+ch], bias[grp*cg+ch]
					}
					c.mapRun(dst[lo+ch*size:lo+(ch+1)*size], src[lo+ch*size:lo+(ch+1)*size], func(t float32) float32 {
						return float32((float64(t)-m)*inv)*sc + bi
					})
				}
			}
		})
	}
	return nil
}

// layer is LayerNormalization over the dims from axis on: the normalized
// value of each code is a 256-entry float table per row, then the
// per-element scale and bias.
func (k *qlinearNorm) layer(ctx *runtime.Context, c *codeIO, shape []int, src, dst []uint8, in []*tensor.Tensor) error {
	n := k.node
	r := int64(len(shape))
	axis := k.axis
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis >= r {
		return fmt.Errorf("%v: axis %d out of range for rank %d", n, k.axis, r)
	}
	outer, err := checkedProduct(shape[:axis]...)
	if err != nil {
		return fmt.Errorf("%v: %v", n, err)
	}
	inner, err := checkedProduct(shape[axis:]...)
	if err != nil {
		return fmt.Errorf("%v: %v", n, err)
	}
	_, st, err := f32Param(n, in, 5, "scale", false)
	if err != nil {
		return err
	}
	sc, err := tensor.BroadcastF32(st, shape[axis:])
	if err != nil {
		return fmt.Errorf("%v: scale: %v", n, err)
	}
	_, bt, err := f32Param(n, in, 6, "B", true)
	if err != nil {
		return err
	}
	var bi []float32
	if bt != nil {
		if bi, err = tensor.BroadcastF32(bt, shape[axis:]); err != nil {
			return fmt.Errorf("%v: B: %v", n, err)
		}
	}
	ctx.Parallel(outer, max(1, 4096/max(1, inner)), func(r0, r1 int) {
		var z [256]float32
		for row := r0; row < r1; row++ {
			s, d := src[row*inner:(row+1)*inner], dst[row*inner:(row+1)*inner]
			m, v := c.meanVar(s)
			inv := 1 / math.Sqrt(v+float64(k.eps))
			for b := range z {
				z[b] = float32((float64(c.deq[b]) - m) * inv)
			}
			for i, b := range s {
				o := z[b]
				o *= sc[i]
				if bi != nil {
					o += bi[i]
				}
				d[i] = c.quant(o)
			}
		}
	})
	return nil
}
