package qlinear

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/simd/q8"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
		runtime.Register(QtoolDomain, "QLinearAdd", dt, newTableBinary(newQLinearAdd, false))
		runtime.Register(QtoolDomain, "QLinearMul", dt, newTableBinary(newQLinearMul, true))
	}
}

// tableBinary is com.qtool QLinearAdd/QLinearMul: com.microsoft's op of the
// same name (same inputs, same results bit for bit), faster where one
// operand is a single element over long runs of the other, as in a
// squeeze-excite block's x · s[N, C, 1, 1]: the output of such a run is a
// function of the whole operand's code alone, so it is a 256-entry table
// made by the com.microsoft kernel's own arithmetic (q8.AddU8/MulU8 on the
// 256 codes with the run's scalar) and applied with q8.LookupU8, instead of
// the per-element scalar path; shorter runs of a Mul (the 14x14 and 7x7
// planes, and every run where it has a SIMD kernel: 16 elements in about
// the time of one table entry's evaluation) take q8.MulScalarU8, MulU8's
// arithmetic specialised to the scalar operand. Other shapes run the
// com.microsoft kernel.
type tableBinary struct {
	inner *addKernel
	mul   bool
}

func newTableBinary(f runtime.Factory, mul bool) runtime.Factory {
	return func(n *graph.Node, opset int64) (runtime.Kernel, error) {
		k, err := f(n, opset)
		if err != nil {
			return nil, err
		}
		return &tableBinary{inner: k.(*addKernel), mul: mul}, nil
	}
}

// tableRun is the shortest run worth a table: 256 evaluations to build it.
const tableRun = 512

func (k *tableBinary) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := k.inner.node
	a, b := input(in, 0), input(in, 3)
	if a == nil || b == nil || a.Validate() != nil || b.Validate() != nil {
		return k.inner.Run(ctx, in) // its errors
	}
	shape, err := broadcastShape(a.Shape, b.Shape)
	if err != nil {
		return k.inner.Run(ctx, in)
	}
	sp := spans(a.Shape, b.Shape, shape)
	if sp.aWhole == sp.bWhole || sp.length < tableRun && !k.mul {
		return k.inner.Run(ctx, in)
	}
	_, _, p, err := binaryParams(n, in)
	if err != nil {
		return nil, err
	}
	out, err := ctx.NewUninit(a.DType, shape)
	if err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	if out.Len() == 0 {
		return []*tensor.Tensor{out}, nil
	}
	ab, bb, ob := bytesOf(a), bytesOf(b), bytesOf(out)
	if k.mul && (sp.length < tableRun || q8.MulScalarSIMD()) {
		ctx.Parallel(sp.count, max(1, 16384/sp.length), func(lo, hi int) {
			for s := lo; s < hi; s++ {
				ao, bo := sp.offsets(s)
				var whole []uint8
				var one uint8
				za, zb := p.ZeroA, p.ZeroB
				if sp.aWhole {
					whole, one = ab[ao:ao+sp.length], bb[bo]
				} else {
					whole, one = bb[bo:bo+sp.length], ab[ao]
					za, zb = zb, za
				}
				q8.MulScalarU8(ob[s*sp.length:(s+1)*sp.length], whole, code(one, p.Signed)-zb, za, p)
			}
		})
		return []*tensor.Tensor{out}, nil
	}
	ctx.Parallel(sp.count, max(1, 16384/sp.length), func(lo, hi int) {
		// Each run's table depends on its scalar operand.
		tab := tablePool.Get().(*[256]uint8)
		defer tablePool.Put(tab)
		for s := lo; s < hi; s++ {
			ao, bo := sp.offsets(s)
			var whole []uint8
			if sp.aWhole {
				// The element order of a and b matters to the arithmetic
				// (AddU8 folds the scalar operand differently), so the
				// codes take the whole operand's place.
				k.inner.op(tab[:], allCodes[:], bb[bo:bo+1], p)
				whole = ab[ao : ao+sp.length]
			} else {
				k.inner.op(tab[:], ab[ao:ao+1], allCodes[:], p)
				whole = bb[bo : bo+sp.length]
			}
			q8.LookupU8(ob[s*sp.length:(s+1)*sp.length], whole, tab)
		}
	})
	return []*tensor.Tensor{out}, nil
}

// binaryParams reads the operands and qparams of QLinearAdd/QLinearMul,
// checked as the com.microsoft kernel checks them.
func binaryParams(n *graph.Node, in []*tensor.Tensor) (a, b *tensor.Tensor, p *q8.AddParams, err error) {
	if a, err = int8In(n, in, 0, "A"); err != nil {
		return nil, nil, nil, err
	}
	if b, err = int8In(n, in, 3, "B"); err != nil {
		return nil, nil, nil, err
	}
	if a.DType != b.DType {
		return nil, nil, nil, fmt.Errorf("%v: A is %v, B is %v", n, a.DType, b.DType)
	}
	var s [3]float32
	for j, i := range []int{1, 4, 6} {
		v, _, err := scalesIn(n, in, i, []string{"A_scale", "B_scale", "C_scale"}[j], 1)
		if err != nil {
			return nil, nil, nil, err
		}
		s[j] = v[0]
	}
	var z [3]int32
	for j, i := range []int{2, 5, 7} {
		v, err := zeroPointsIn(n, in, i, []string{"A_zero_point", "B_zero_point", "C_zero_point"}[j], a.DType, 1)
		if err != nil {
			return nil, nil, nil, err
		}
		if len(v) != 1 {
			return nil, nil, nil, fmt.Errorf("%v: zero points must be scalars", n)
		}
		z[j] = v[0]
	}
	return a, b, &q8.AddParams{ScaleA: s[0], ScaleB: s[1], ScaleC: s[2], ZeroA: z[0], ZeroB: z[1], ZeroC: z[2], Signed: a.DType == tensor.Int8}, nil
}

// allCodes is every byte in order, the whole operand of a table's
// evaluation (read only: a local array would escape through the kernel's
// func value on every run).
var allCodes = func() (c [256]uint8) {
	for i := range c {
		c[i] = uint8(i)
	}
	return
}()

func code(b uint8, signed bool) int32 {
	if signed {
		return int32(int8(b))
	}
	return int32(b)
}
