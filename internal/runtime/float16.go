package runtime

import (
	"fmt"
	"math"
	"sync"

	"github.com/x448/float16"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// Float16 models (qtool convert --fp16-full, onnxconverter-common's
// convert_float_to_float16) run every op on float16 tensors, but most of our
// kernels exist only for float32. Rather than a float16 twin of each, a node
// whose first input is float16 and whose op has no float16 (or
// dtype-independent) kernel runs its float32 kernel: float16 inputs are
// widened to float32 (exact), the kernel computes in float32, and its float32
// results are rounded to float16 (round half to even). That is "store in
// float16, compute in float32", what ONNX Runtime's CPU provider does for
// most of its float16 ops too; the results are those of the float32 kernel on
// the same data, so they are deterministic whatever the thread count.

// f16Grain is the number of elements converted per goroutine at least.
const f16Grain = 1 << 15

// float16Fallback wraps a float32 factory for a node with float16 inputs.
func float16Fallback(f32 Factory) Factory {
	return func(n *graph.Node, opset int64) (Kernel, error) {
		shadow := &graph.Node{}
		*shadow = *n
		// The float32 factory sees the node as it would be in a float32
		// model: float16 values declared float32, float16 constants widened
		// (so that weight prepacking reads them at plan time).
		shadow.Inputs = make([]*graph.Value, len(n.Inputs))
		wide := make([]*tensor.Tensor, len(n.Inputs))
		for i, v := range n.Inputs {
			shadow.Inputs[i] = v
			if v == nil || (v.DType != tensor.Float16 && (v.Const == nil || v.Const.DType != tensor.Float16)) {
				continue
			}
			sv := *v
			sv.DType = tensor.Float32
			if v.Const != nil {
				if v.Const.DType != tensor.Float16 {
					return nil, fmt.Errorf("%v: input %q declared float16 holds %v", n, v.Name, v.Const.DType)
				}
				w, err := widen(nil, v.Const)
				if err != nil {
					return nil, fmt.Errorf("%v: input %q: %v", n, v.Name, err)
				}
				sv.Const, wide[i] = w, w
			}
			shadow.Inputs[i] = &sv
		}
		shadow.Outputs = make([]*graph.Value, len(n.Outputs))
		round := make([]int8, len(n.Outputs)) // 1 round, 0 if any input was float16, -1 keep
		for i, v := range n.Outputs {
			shadow.Outputs[i] = v
			if v == nil {
				continue
			}
			switch v.DType {
			case tensor.Float16:
				round[i] = 1
				sv := *v
				sv.DType = tensor.Float32
				shadow.Outputs[i] = &sv
			case tensor.Undefined:
			default:
				round[i] = -1
			}
		}
		k, err := f32(shadow, opset)
		if err != nil {
			return nil, err
		}
		return &f16Kernel{k: k, consts: constsOf(n), wide: wide, round: round}, nil
	}
}

func constsOf(n *graph.Node) []*tensor.Tensor {
	c := make([]*tensor.Tensor, len(n.Inputs))
	for i, v := range n.Inputs {
		if v != nil {
			c[i] = v.Const
		}
	}
	return c
}

// f16Kernel runs a float32 kernel on float16 data.
type f16Kernel struct {
	k      Kernel
	consts []*tensor.Tensor // the node's constant inputs as planned
	wide   []*tensor.Tensor // their float32 forms (nil where not float16)
	round  []int8
}

func (k *f16Kernel) Run(ctx *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	args := make([]*tensor.Tensor, len(in))
	var temps []*tensor.Tensor
	any16 := false
	for i, t := range in {
		args[i] = t
		if t == nil || t.DType != tensor.Float16 {
			continue
		}
		any16 = true
		// A constant widened at plan time is handed over as the same
		// tensor every run, so kernels that cache packed weights by
		// identity keep their cache.
		if i < len(k.consts) && t == k.consts[i] && k.wide[i] != nil {
			args[i] = k.wide[i]
			continue
		}
		w, err := widen(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("input %d: %v", i, err)
		}
		args[i] = w
		temps = append(temps, w)
	}
	outs, err := k.k.Run(ctx, args)
	if err != nil {
		return nil, err
	}
	res := make([]*tensor.Tensor, len(outs))
	for i, t := range outs {
		res[i] = t
		r := int8(0)
		if i < len(k.round) {
			r = k.round[i]
		}
		if t == nil || t.DType != tensor.Float32 || r < 0 || (r == 0 && !any16) {
			continue
		}
		h, err := narrow(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("output %d: %v", i, err)
		}
		res[i] = h
		temps = append(temps, t)
	}
	ctx.recycle(temps, res)
	return res, nil
}

// widen returns t (float16) as a new float32 tensor.
func widen(ctx *Context, t *tensor.Tensor) (*tensor.Tensor, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	w, err := ctx.NewUninit(tensor.Float32, t.Shape)
	if err != nil {
		return nil, err
	}
	src, dst := t.F16(), w.F32()
	tab := widenTable()
	ctx.Parallel(len(src), f16Grain, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			dst[j] = tab[src[j]]
		}
	})
	return w, nil
}

// narrow returns t (float32) rounded half to even to a new float16 tensor.
func narrow(ctx *Context, t *tensor.Tensor) (*tensor.Tensor, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	h, err := ctx.NewUninit(tensor.Float16, t.Shape)
	if err != nil {
		return nil, err
	}
	src, dst := t.F32(), h.F16()
	ctx.Parallel(len(src), f16Grain, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			dst[j] = toHalf(src[j])
		}
	})
	return h, nil
}

// The conversions run on every input and output of a fallback node, so they
// are a sizeable share of a float16 model's time: widening is a lookup in a
// 256 KiB table, narrowing the branch-light rounding of F. Giesen's
// float_to_half_fast3_rtne. Both give x448/float16's results bit for bit
// (float16_test.go checks every float16 and a sweep of float32s).

var (
	widenOnce sync.Once
	widenTab  *[1 << 16]float32
)

func widenTable() *[1 << 16]float32 {
	widenOnce.Do(func() {
		widenTab = new([1 << 16]float32)
		for i := range widenTab {
			widenTab[i] = float16.Frombits(uint16(i)).Float32()
		}
	})
	return widenTab
}

// toHalf rounds f to float16, half to even; NaNs take x448's path (their
// payload bits).
func toHalf(f float32) float16.Float16 {
	x := math.Float32bits(f)
	sign := uint16(x>>16) & 0x8000
	x &= 0x7fffffff
	switch {
	case x > 0x7f800000:
		return float16.Fromfloat32(f)
	case x >= 0x47800000: // 65536 and up, and Inf
		return float16.Float16(sign | 0x7c00)
	case x < 0x38800000: // below 2^-14: subnormal or zero
		// Adding 0.5 lines the float16 subnormal step up with float32's
		// last bit, so float32 addition does the rounding.
		h := math.Float32bits(math.Float32frombits(x)+0.5) - 0x3f000000
		return float16.Float16(sign | uint16(h))
	}
	odd := (x >> 13) & 1
	// Rebias the exponent (15-127) and add the rounding bias 0xfff plus
	// the odd bit (ties to even); a carry rounds up into the exponent.
	x += 0xc8000fff + odd
	return float16.Float16(sign | uint16(x>>13))
}

// recycle gives the float32 temporaries of a fallback step back to the
// session's pool: those allocated by New during this step (never a caller's
// tensor or a constant) that no returned output shares. Each buffer once.
func (c *Context) recycle(temps, keep []*tensor.Tensor) {
	if c == nil || c.pool == nil {
		return
	}
	done := map[uintptr]bool{}
	for _, t := range temps {
		p := dataPtr(t)
		if p == 0 || done[p] || sharesData(t, keep) {
			continue
		}
		done[p] = true
		for _, a := range c.allocs {
			if a == p {
				c.pool.put(t)
				break
			}
		}
	}
}

func sharesData(t *tensor.Tensor, others []*tensor.Tensor) bool {
	lo, hi := dataRange(t)
	for _, o := range others {
		a, b := dataRange(o)
		if a < hi && lo < b {
			return true
		}
	}
	return false
}
