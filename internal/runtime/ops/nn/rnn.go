package nn

import (
	"fmt"
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	register("", "LSTM", func(n *graph.Node, opset int64) (runtime.Kernel, error) { return newRNN(n, opset, cellLSTM) })
	register("", "GRU", func(n *graph.Node, opset int64) (runtime.Kernel, error) { return newRNN(n, opset, cellGRU) })
	register("", "RNN", func(n *graph.Node, opset int64) (runtime.Kernel, error) { return newRNN(n, opset, cellRNN) })
}

type cellKind int

const (
	cellRNN  cellKind = 1 // gates: i
	cellGRU  cellKind = 3 // gates: z, r, h
	cellLSTM cellKind = 4 // gates: i, o, f, c
)

// actFn is one of the recurrent ops' activation functions.
type actFn func(float32) float32

func sigmoid(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }
func tanh32(x float32) float32  { return float32(math.Tanh(float64(x))) }

// makeAct builds a named activation; alpha and beta are the next unused
// entries of activation_alpha/beta (nil when exhausted: the op's default).
func makeAct(n *graph.Node, name string, alpha, beta *float32) (actFn, bool, bool, error) {
	a := func(def float32) float32 {
		if alpha != nil {
			return *alpha
		}
		return def
	}
	b := func(def float32) float32 {
		if beta != nil {
			return *beta
		}
		return def
	}
	switch name {
	case "Sigmoid":
		return sigmoid, false, false, nil
	case "Tanh":
		return tanh32, false, false, nil
	case "Relu":
		return func(x float32) float32 { return max(x, 0) }, false, false, nil
	case "Affine":
		al, be := a(1), b(0)
		return func(x float32) float32 { return al*x + be }, true, true, nil
	case "LeakyRelu":
		al := a(0.01)
		return func(x float32) float32 {
			if x < 0 {
				return al * x
			}
			return x
		}, true, false, nil
	case "ThresholdedRelu":
		al := a(1)
		return func(x float32) float32 {
			if x > al {
				return x
			}
			return 0
		}, true, false, nil
	case "ScaledTanh":
		al, be := a(1), b(1)
		return func(x float32) float32 { return al * tanh32(be*x) }, true, true, nil
	case "HardSigmoid":
		al, be := a(0.2), b(0.5)
		return func(x float32) float32 { return max(0, min(1, al*x+be)) }, true, true, nil
	case "Elu":
		al := a(1)
		return func(x float32) float32 {
			if x < 0 {
				return al * float32(math.Expm1(float64(x)))
			}
			return x
		}, true, false, nil
	case "Softsign":
		return func(x float32) float32 { return x / (1 + float32(math.Abs(float64(x)))) }, false, false, nil
	case "Softplus":
		return func(x float32) float32 { return float32(math.Log1p(math.Exp(float64(x)))) }, false, false, nil
	}
	return nil, false, false, fmt.Errorf("%v: unsupported activation %q", n, name)
}

type rnnOp struct {
	n           *graph.Node
	kind        cellKind
	dirs        int
	reverse     bool // direction "reverse" (single direction)
	hidden      int
	clip        float32
	layout      int64
	inputForget bool
	lbr         bool
	acts        [][]actFn // per direction: f, g, h
	// Packed W and R per direction, reused across runs while the weights
	// are unchanged (initializers are the common case).
	wCache, rCache packCache[[]*packedB]
}

func newRNN(n *graph.Node, opset int64, kind cellKind) (*rnnOp, error) {
	r := &rnnOp{n: n, kind: kind, dirs: 1}
	dir, err := n.AttrString("direction", "forward")
	if err != nil {
		return nil, err
	}
	switch dir {
	case "forward":
	case "reverse":
		r.reverse = true
	case "bidirectional":
		r.dirs = 2
	default:
		return nil, fmt.Errorf("%v: unknown direction %q", n, dir)
	}
	h, err := n.AttrInt("hidden_size", 0)
	if err != nil {
		return nil, err
	}
	if h < 0 || h > 1<<24 {
		return nil, fmt.Errorf("%v: hidden_size %d out of range", n, h)
	}
	r.hidden = int(h)
	clip, err := n.AttrFloat("clip", 0)
	if err != nil {
		return nil, err
	}
	if clip < 0 {
		return nil, fmt.Errorf("%v: clip %v must be positive", n, clip)
	}
	r.clip = clip
	if r.layout, err = n.AttrInt("layout", 0); err != nil {
		return nil, err
	}
	if r.layout != 0 && r.layout != 1 {
		return nil, fmt.Errorf("%v: layout %d must be 0 or 1", n, r.layout)
	}
	ifg, err := n.AttrInt("input_forget", 0)
	if err != nil {
		return nil, err
	}
	r.inputForget = ifg != 0
	lbr, err := n.AttrInt("linear_before_reset", 0)
	if err != nil {
		return nil, err
	}
	r.lbr = lbr != 0
	var defs []string
	switch kind {
	case cellLSTM:
		defs = []string{"Sigmoid", "Tanh", "Tanh"}
	case cellGRU:
		defs = []string{"Sigmoid", "Tanh"}
	default:
		defs = []string{"Tanh"}
	}
	names, err := n.AttrStrings("activations", nil)
	if err != nil {
		return nil, err
	}
	if names == nil {
		for d := 0; d < r.dirs; d++ {
			names = append(names, defs...)
		}
	}
	if len(names) == len(defs) && r.dirs == 2 {
		names = append(names, names...)
	}
	if len(names) != len(defs)*r.dirs {
		return nil, fmt.Errorf("%v: %d activations, want %d", n, len(names), len(defs)*r.dirs)
	}
	alphas, err := n.AttrFloats("activation_alpha", nil)
	if err != nil {
		return nil, err
	}
	betas, err := n.AttrFloats("activation_beta", nil)
	if err != nil {
		return nil, err
	}
	ai, bi := 0, 0
	for d := 0; d < r.dirs; d++ {
		var fs []actFn
		for _, name := range names[d*len(defs) : (d+1)*len(defs)] {
			var ap, bp *float32
			if ai < len(alphas) {
				ap = &alphas[ai]
			}
			if bi < len(betas) {
				bp = &betas[bi]
			}
			f, usesA, usesB, err := makeAct(n, name, ap, bp)
			if err != nil {
				return nil, err
			}
			if usesA {
				ai++
			}
			if usesB {
				bi++
			}
			fs = append(fs, f)
		}
		r.acts = append(r.acts, fs)
	}
	// Initializer weights are packed now, once.
	for i, c := range []*packCache[[]*packedB]{&r.wCache, &r.rCache} {
		if v := n.Input(1 + i); v != nil && v.Const != nil && v.Const.DType == tensor.Float32 &&
			len(v.Const.Shape) == 3 && v.Const.Shape[0] == r.dirs && v.Const.Validate() == nil {
			c.setConst(v.Const, packRNN(v.Const))
		}
	}
	return r, nil
}

func (r *rnnOp) Run(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := r.n
	G := int(r.kind)
	x, err := f32In(n, in, 0)
	if err != nil {
		return nil, err
	}
	w, err := f32In(n, in, 1)
	if err != nil {
		return nil, err
	}
	rw, err := f32In(n, in, 2)
	if err != nil {
		return nil, err
	}
	b, err := optF32In(n, in, 3)
	if err != nil {
		return nil, err
	}
	seqLens, err := intsIn(n, in, 4)
	if err != nil {
		return nil, err
	}
	h0, err := optF32In(n, in, 5)
	if err != nil {
		return nil, err
	}
	var c0, peep *tensor.Tensor
	if r.kind == cellLSTM {
		if c0, err = optF32In(n, in, 6); err != nil {
			return nil, err
		}
		if peep, err = optF32In(n, in, 7); err != nil {
			return nil, err
		}
	}
	if x.Rank() != 3 {
		return nil, fmt.Errorf("%v: X %v must have rank 3", n, x.Shape)
	}
	T, B, I := x.Shape[0], x.Shape[1], x.Shape[2]
	if r.layout == 1 {
		T, B = B, T
	}
	D := r.dirs
	H := r.hidden
	if rw.Rank() == 3 && H == 0 {
		H = rw.Shape[2]
	}
	if !tensor.SameShape(w.Shape, []int{D, G * H, I}) || !tensor.SameShape(rw.Shape, []int{D, G * H, H}) {
		return nil, fmt.Errorf("%v: W %v and R %v do not fit %d directions, hidden %d, input %d", n, w.Shape, rw.Shape, D, H, I)
	}
	if b != nil && b.Len() != D*2*G*H {
		return nil, fmt.Errorf("%v: B %v, want [%d %d]", n, b.Shape, D, 2*G*H)
	}
	if seqLens != nil {
		if len(seqLens) != B {
			return nil, fmt.Errorf("%v: sequence_lens has %d values, batch is %d", n, len(seqLens), B)
		}
		for _, l := range seqLens {
			if l < 0 || l > int64(T) {
				return nil, fmt.Errorf("%v: sequence length %d outside [0, %d]", n, l, T)
			}
		}
	}
	stateShape := []int{D, B, H}
	if r.layout == 1 {
		stateShape = []int{B, D, H}
	}
	for _, s := range []*tensor.Tensor{h0, c0} {
		if s != nil && s.Len() != D*B*H {
			return nil, fmt.Errorf("%v: initial state %v, want %v", n, s.Shape, stateShape)
		}
	}
	if peep != nil && peep.Len() != D*3*H {
		return nil, fmt.Errorf("%v: P %v, want [%d %d]", n, peep.Shape, D, 3*H)
	}
	yShape := []int{T, D, B, H}
	if r.layout == 1 {
		yShape = []int{B, T, D, H}
	}
	y, err := newF32(ctx, n, yShape)
	if err != nil {
		return nil, err
	}
	yh, _ := newF32(ctx, n, stateShape)
	var yc *tensor.Tensor
	if r.kind == cellLSTM {
		yc, _ = newF32(ctx, n, stateShape)
	}
	if _, err := tensor.NumElements([]int{T * B, G * H}); err != nil {
		return nil, fmt.Errorf("%v: %v", n, err)
	}
	// state index helpers: [d][b] in either layout.
	stIdx := func(d, bb int) int {
		if r.layout == 1 {
			return (bb*D + d) * H
		}
		return (d*B + bb) * H
	}
	yIdx := func(t, d, bb int) int {
		if r.layout == 1 {
			return ((bb*T+t)*D + d) * H
		}
		return ((t*D+d)*B + bb) * H
	}
	xd := x.F32()
	GH := G * H
	xw := make([]float32, T*B*GH)
	hr := make([]float32, B*GH)
	hPrev := make([]float32, B*H)
	cPrev := make([]float32, B*H)
	rh := make([]float32, B*H)
	pws := r.wCache.get(w, func() []*packedB { return packRNN(w) })
	prs := r.rCache.get(rw, func() []*packedB { return packRNN(rw) })
	for d := 0; d < D; d++ {
		reverse := r.reverse || d == 1
		f := r.acts[d]
		// Biases: Wb+Rb folded into the input projection, except GRU's
		// recurrent h-gate bias when linear_before_reset (it sits inside
		// the reset product).
		bias := make([]float32, GH)
		rbh := make([]float32, H)
		if b != nil {
			bd := b.F32()[d*2*GH : (d+1)*2*GH]
			for i := 0; i < GH; i++ {
				bias[i] = bd[i] + bd[GH+i]
			}
			if r.kind == cellGRU && r.lbr {
				for i := 0; i < H; i++ {
					bias[2*H+i] = bd[2*H+i]
					rbh[i] = bd[GH+2*H+i]
				}
			}
		}
		// Input projection for all time steps at once: rows of X in its own
		// layout order (t·B+b, or b·T+t for layout 1).
		if I > 0 && T*B > 0 {
			pw := pws[d]
			colsParallel(ctx, pw, T*B, I, func(n0, n1 int) {
				gemmPackedB(T*B, xd, I, pw, n0, n1, xw, GH, epilogue{ColBias: bias})
			})
		} else {
			for row := 0; row < T*B; row++ {
				copy(xw[row*GH:(row+1)*GH], bias)
			}
		}
		xwRow := func(t, bb int) []float32 {
			if r.layout == 1 {
				return xw[(bb*T+t)*GH : (bb*T+t+1)*GH]
			}
			return xw[(t*B+bb)*GH : (t*B+bb+1)*GH]
		}
		pr := prs[d]
		for bb := 0; bb < B; bb++ {
			s := stIdx(d, bb)
			if h0 != nil {
				copy(hPrev[bb*H:(bb+1)*H], h0.F32()[s:s+H])
			} else {
				clear(hPrev[bb*H : (bb+1)*H])
			}
			if c0 != nil {
				copy(cPrev[bb*H:(bb+1)*H], c0.F32()[s:s+H])
			} else {
				clear(cPrev[bb*H : (bb+1)*H])
			}
		}
		var pi, po, pf []float32
		if peep != nil {
			p := peep.F32()[d*3*H : (d+1)*3*H]
			pi, po, pf = p[:H], p[H:2*H], p[2*H:]
		}
		clipv := func(v float32) float32 {
			if r.clip > 0 {
				return min(max(v, -r.clip), r.clip)
			}
			return v
		}
		for step := 0; step < T; step++ {
			// Recurrent projection H_{t-1}·Rᵀ for every batch row (GRU
			// without linear_before_reset does its h gate after r is known).
			recCols := GH
			if r.kind == cellGRU && !r.lbr {
				recCols = 2 * H
			}
			if H > 0 {
				gemmPackedB(B, hPrev, H, pr, 0, recCols, hr, GH, epilogue{})
			}
			if r.kind == cellGRU && !r.lbr && H > 0 {
				for bb := 0; bb < B; bb++ {
					l := T
					if seqLens != nil {
						l = int(seqLens[bb])
					}
					if step >= l {
						continue
					}
					t := step
					if reverse {
						t = l - 1 - step
					}
					g := xwRow(t, bb)
					for j := 0; j < H; j++ {
						rg := f[0](clipv(g[H+j] + hr[bb*GH+H+j]))
						rh[bb*H+j] = rg * hPrev[bb*H+j]
					}
				}
				gemmPackedB(B, rh, H, pr, 2*H, GH, hr, GH, epilogue{})
			}
			for bb := 0; bb < B; bb++ {
				l := T
				if seqLens != nil {
					l = int(seqLens[bb])
				}
				if step >= l {
					continue
				}
				t := step
				if reverse {
					t = l - 1 - step
				}
				g := xwRow(t, bb)
				rec := hr[bb*GH : (bb+1)*GH]
				hp := hPrev[bb*H : (bb+1)*H]
				cp := cPrev[bb*H : (bb+1)*H]
				switch r.kind {
				case cellRNN:
					for j := 0; j < H; j++ {
						hp[j] = f[0](clipv(g[j] + rec[j]))
					}
				case cellGRU:
					for j := 0; j < H; j++ {
						z := f[0](clipv(g[j] + rec[j]))
						var hh float32
						if r.lbr {
							rg := f[0](clipv(g[H+j] + rec[H+j]))
							hh = f[1](clipv(g[2*H+j] + rg*(rec[2*H+j]+rbh[j])))
						} else {
							hh = f[1](clipv(g[2*H+j] + rec[2*H+j]))
						}
						hp[j] = (1-z)*hh + z*hp[j]
					}
				case cellLSTM:
					for j := 0; j < H; j++ {
						iv := g[j] + rec[j]
						ov := g[H+j] + rec[H+j]
						fv := g[2*H+j] + rec[2*H+j]
						cv := g[3*H+j] + rec[3*H+j]
						if pi != nil {
							iv += pi[j] * cp[j]
							fv += pf[j] * cp[j]
						}
						ig := f[0](clipv(iv))
						fg := f[0](clipv(fv))
						if r.inputForget {
							fg = 1 - ig
						}
						cg := f[1](clipv(cv))
						c := fg*cp[j] + ig*cg
						if po != nil {
							ov += po[j] * c
						}
						og := f[0](clipv(ov))
						cp[j] = c
						hp[j] = og * f[2](c)
					}
				}
				copy(y.F32()[yIdx(t, d, bb):yIdx(t, d, bb)+H], hp)
			}
		}
		for bb := 0; bb < B; bb++ {
			s := stIdx(d, bb)
			copy(yh.F32()[s:s+H], hPrev[bb*H:(bb+1)*H])
			if yc != nil {
				copy(yc.F32()[s:s+H], cPrev[bb*H:(bb+1)*H])
			}
		}
	}
	return []*tensor.Tensor{y, yh, yc}, nil
}

// packRNN packs each direction's W [G·H × I] or R [G·H × H] (of a checked
// [D, G·H, K] tensor) transposed, as the right operand of X·Wᵀ / H·Rᵀ.
func packRNN(w *tensor.Tensor) []*packedB {
	D, GH, K := w.Shape[0], w.Shape[1], w.Shape[2]
	out := make([]*packedB, D)
	for d := range out {
		if K > 0 && GH > 0 {
			out[d] = packB(true, K, GH, w.F32()[d*GH*K:(d+1)*GH*K], K)
		}
	}
	return out
}
