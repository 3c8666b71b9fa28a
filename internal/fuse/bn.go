package fuse

import (
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// bnParams is an inference BatchNormalization reduced to y = x*scale + shift
// per channel, in float64 so that folding adds no rounding of its own.
type bnParams struct {
	scale, shift []float64
}

// readBN checks that bn is an inference BatchNormalization with constant
// float32 parameters of length c, and returns its per-channel affine form.
func (f *fuser) readBN(ix *graph.Index, bn *graph.Node) (*bnParams, string) {
	if tm, _ := bn.AttrInt("training_mode", 0); tm != 0 {
		return nil, "training_mode is set"
	}
	for i := 1; i < len(bn.Outputs); i++ {
		if v := bn.Output(i); v != nil && ix.Uses(v) > 0 {
			return nil, "its running statistics outputs are used"
		}
	}
	var p [4][]float32
	for i := 0; i < 4; i++ {
		c := graph.ConstValue(ix, bn.Input(i+1))
		if c == nil {
			return nil, "a BatchNormalization parameter is not a constant"
		}
		if c.DType != tensor.Float32 || c.Rank() != 1 {
			return nil, "BatchNormalization parameters are not 1-D float32"
		}
		p[i] = c.F32()
	}
	n := len(p[0])
	for i := 1; i < 4; i++ {
		if len(p[i]) != n {
			return nil, "BatchNormalization parameters differ in length"
		}
	}
	eps, err := bn.AttrFloat("epsilon", 1e-5)
	if err != nil {
		return nil, err.Error()
	}
	bp := &bnParams{scale: make([]float64, n), shift: make([]float64, n)}
	for c := 0; c < n; c++ {
		gamma, beta, mean, variance := float64(p[0][c]), float64(p[1][c]), float64(p[2][c]), float64(p[3][c])
		// ONNX computes (x - mean) / sqrt(var + eps) with eps as float32.
		s := gamma / math.Sqrt(variance+float64(eps))
		bp.scale[c] = s
		bp.shift[c] = beta - mean*s
	}
	return bp, ""
}

// foldBatchNorms folds BatchNormalization into a preceding Conv,
// ConvTranspose, Gemm, or 2-D MatMul with a constant weight.
func (f *fuser) foldBatchNorms() {
	ix := f.g.Index()
	for _, bn := range f.g.Nodes {
		if bn.OpType != "BatchNormalization" || !graph.IsDefaultDomain(bn.Domain) {
			continue
		}
		x := bn.Input(0)
		prod := ix.Producer[x]
		if prod == nil || !graph.IsDefaultDomain(prod.Domain) {
			continue
		}
		kind := prod.OpType
		if kind != "Conv" && kind != "ConvTranspose" && kind != "Gemm" && kind != "MatMul" {
			continue
		}
		if prod.Output(0) != x || !ix.SingleUse(x) {
			f.skip(bn, "%v's output has another consumer or is a graph output", prod)
			continue
		}
		bp, why := f.readBN(ix, bn)
		if bp == nil {
			f.skip(bn, "%s", why)
			continue
		}
		var ok bool
		switch kind {
		case "Conv", "ConvTranspose":
			ok = f.foldIntoConv(ix, prod, bp.scale, bp.shift, bn)
		case "Gemm":
			ok = f.foldIntoGemm(ix, prod, bp.scale, bp.shift, bn)
		case "MatMul":
			ok = f.foldIntoMatMul(ix, prod, bp.scale, bp.shift, bn)
		}
		if !ok {
			continue
		}
		prod.Outputs[0] = bn.Output(0)
		f.g.RemoveNode(bn)
		f.count(kind + "+BatchNormalization")
		ix = f.g.Index()
	}
}

// constWeight returns the node's constant float32 input i if this node is
// its only reader.
func (f *fuser) constWeight(ix *graph.Index, n *graph.Node, i int, who *graph.Node) *tensor.Tensor {
	v := n.Input(i)
	c := graph.ConstValue(ix, v)
	if c == nil {
		f.skip(who, "%v's input %d is not a constant", n, i)
		return nil
	}
	if c.DType != tensor.Float32 {
		f.skip(who, "%v's input %d is %v, not float32", n, i, c.DType)
		return nil
	}
	if ix.Uses(v) != 1 {
		f.skip(who, "%v's input %q is shared with other nodes", n, v.Name)
		return nil
	}
	return c
}

// setInput replaces input i of n with a new initializer holding t.
func (f *fuser) setInput(n *graph.Node, i int, base string, t *tensor.Tensor) {
	v := f.g.AddInitializer(f.nm, base, t)
	for len(n.Inputs) <= i {
		n.Inputs = append(n.Inputs, nil)
	}
	n.Inputs[i] = v
}

// foldIntoConv scales output channel c of a Conv or ConvTranspose by
// scale[c] and adds shift[c] to its bias.
func (f *fuser) foldIntoConv(ix *graph.Index, conv *graph.Node, scale, shift []float64, who *graph.Node) bool {
	w := f.constWeight(ix, conv, 1, who)
	if w == nil {
		return false
	}
	if w.Rank() < 3 {
		f.skip(who, "%v's weight has rank %d", conv, w.Rank())
		return false
	}
	group, err := conv.AttrInt("group", 1)
	if err != nil || group < 1 {
		f.skip(who, "%v has a bad group attribute", conv)
		return false
	}
	var cout int
	if conv.OpType == "Conv" {
		cout = w.Shape[0]
	} else {
		if w.Shape[0]%int(group) != 0 {
			f.skip(who, "%v's weight does not split into %d groups", conv, group)
			return false
		}
		cout = w.Shape[1] * int(group)
	}
	if cout != len(scale) {
		f.skip(who, "%v has %d output channels, BatchNormalization %d", conv, cout, len(scale))
		return false
	}
	bias := f.readBias(ix, conv, 2, cout, who)
	if bias == nil {
		return false
	}
	nw := w.Clone()
	wd := nw.F32()
	if conv.OpType == "Conv" {
		per := len(wd) / cout
		for c := 0; c < cout; c++ {
			for i := c * per; i < (c+1)*per; i++ {
				wd[i] = float32(float64(wd[i]) * scale[c])
			}
		}
	} else {
		// ConvTranspose weight: [Cin, Cout/group, k...]; input channel ci
		// belongs to group ci / (Cin/group).
		cin, coutg := w.Shape[0], w.Shape[1]
		per := len(wd) / (cin * coutg)
		cinG := cin / int(group)
		for ci := 0; ci < cin; ci++ {
			g := ci / cinG
			for j := 0; j < coutg; j++ {
				s := scale[g*coutg+j]
				base := (ci*coutg + j) * per
				for i := base; i < base+per; i++ {
					wd[i] = float32(float64(wd[i]) * s)
				}
			}
		}
	}
	nb := make([]float32, cout)
	for c := range nb {
		nb[c] = float32(bias[c]*scale[c] + shift[c])
	}
	f.setInput(conv, 1, conv.Input(1).Name+"_fused", nw)
	f.setInput(conv, 2, biasName(conv), tensor.FromFloat32([]int{cout}, nb))
	return true
}

func biasName(n *graph.Node) string {
	if b := n.Input(2); b != nil {
		return b.Name + "_fused"
	}
	return n.Input(1).Name + "_bias"
}

// readBias returns the node's constant 1-D bias input i (zeros if absent).
func (f *fuser) readBias(ix *graph.Index, n *graph.Node, i, length int, who *graph.Node) []float64 {
	out := make([]float64, length)
	v := n.Input(i)
	if v == nil {
		return out
	}
	b := f.constWeight(ix, n, i, who)
	if b == nil {
		return nil
	}
	if b.Len() != length {
		f.skip(who, "%v's bias has %d values, want %d", n, b.Len(), length)
		return nil
	}
	for c, x := range b.F32() {
		out[c] = float64(x)
	}
	return out
}

// foldIntoGemm scales output column n of Gemm by scale[n] and adds shift.
// Y = alpha*A*B + beta*C; the new B absorbs scale, the new C (1-D, beta
// folded in) absorbs both.
func (f *fuser) foldIntoGemm(ix *graph.Index, gemm *graph.Node, scale, shift []float64, who *graph.Node) bool {
	b := f.constWeight(ix, gemm, 1, who)
	if b == nil || b.Rank() != 2 {
		return false
	}
	transB, _ := gemm.AttrInt("transB", 0)
	n := b.Shape[1]
	if transB != 0 {
		n = b.Shape[0]
	}
	if n != len(scale) {
		f.skip(who, "%v has %d outputs, BatchNormalization %d", gemm, n, len(scale))
		return false
	}
	beta, _ := gemm.AttrFloat("beta", 1)
	cvals := make([]float64, n)
	if cv := gemm.Input(2); cv != nil {
		c := f.constWeight(ix, gemm, 2, who)
		if c == nil {
			return false
		}
		// C must be a per-column vector ([N] or [1,N]) or a scalar; a full
		// [M,N] C cannot be folded without knowing M.
		switch {
		case c.Len() == 1:
			for j := range cvals {
				cvals[j] = float64(c.F32()[0])
			}
		case c.Len() == n && (c.Rank() == 1 || (c.Rank() == 2 && c.Shape[0] == 1)):
			for j, x := range c.F32() {
				cvals[j] = float64(x)
			}
		default:
			f.skip(who, "%v's C has shape %v", gemm, c.Shape)
			return false
		}
	}
	nb := b.Clone()
	bd := nb.F32()
	k := len(bd) / n
	for j := 0; j < n; j++ {
		for i := 0; i < k; i++ {
			idx := i*n + j
			if transB != 0 {
				idx = j*k + i
			}
			bd[idx] = float32(float64(bd[idx]) * scale[j])
		}
	}
	nc := make([]float32, n)
	for j := range nc {
		nc[j] = float32(float64(beta)*cvals[j]*scale[j] + shift[j])
	}
	f.setInput(gemm, 1, gemm.Input(1).Name+"_fused", nb)
	f.setInput(gemm, 2, biasName(gemm), tensor.FromFloat32([]int{n}, nc))
	gemm.SetAttr(graph.FloatAttr("beta", 1))
	return true
}

// foldIntoMatMul turns MatMul(A[M,K], B const [K,N]) + BN into a Gemm.
// BatchNormalization's channel axis is 1, so A must be 2-D for the channel
// to be MatMul's last axis.
func (f *fuser) foldIntoMatMul(ix *graph.Index, mm *graph.Node, scale, shift []float64, who *graph.Node) bool {
	a := mm.Input(0)
	if a == nil || len(a.Shape) != 2 {
		f.skip(who, "%v's input is not known to be 2-D", mm)
		return false
	}
	b := graph.ConstValue(ix, mm.Input(1))
	if b == nil || b.Rank() != 2 {
		f.skip(who, "%v's weight is not a constant matrix", mm)
		return false
	}
	mm.OpType = "Gemm"
	if !f.foldIntoGemm(ix, mm, scale, shift, who) {
		mm.OpType = "MatMul"
		return false
	}
	return true
}
