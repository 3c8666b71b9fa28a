// Package fuse rewrites float graphs the way PyTorch's fused modules
// (torch.nn.intrinsic) do for ONNX: BatchNormalization folded into the
// preceding Conv/ConvTranspose/Gemm/MatMul, per-channel Mul/Add by constants
// folded into convolutions, MatMul+Add turned into Gemm, activations fused
// into the convolution's epilogue, Identity/Dropout removed and shape
// subgraphs constant-folded.
//
// Every rewrite keeps the numerics within float rounding, and a rewrite is
// only done when it is safe: a value with a second consumer, a weight shared
// by two nodes or a non-constant parameter leaves the graph as it was, and
// the reason is reported through Options.Log.
//
// Fused activations are written as com.microsoft FusedConv, the contrib op
// that ONNX Runtime and qtool's runtime both execute; Options.Portable keeps
// them as separate standard nodes instead.
package fuse

import (
	"fmt"
	"sort"

	"github.com/qtool/qtool/internal/graph"
)

// MSDomain is the domain of ONNX Runtime's contrib ops (FusedConv).
const MSDomain = "com.microsoft"

// Options select and report the rewrites.
type Options struct {
	// Portable writes only standard ai.onnx ops: activations are not fused
	// into FusedConv.
	Portable bool
	// NoConstantFolding keeps shape subgraphs and other constant
	// expressions as they are.
	NoConstantFolding bool
	// Log, when set, receives one line per rewrite that was considered and
	// not done, saying why (`qtool fuse --verbose`).
	Log func(msg string)
}

// Report counts what was done, by pattern name.
type Report struct {
	Counts map[string]int
}

// Total is the number of rewrites done.
func (r *Report) Total() int {
	n := 0
	for _, c := range r.Counts {
		n += c
	}
	return n
}

// Patterns lists the pattern names with a count, sorted.
func (r *Report) Patterns() []string {
	var out []string
	for k := range r.Counts {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type fuser struct {
	g   *graph.Graph
	o   Options
	rep *Report
	nm  *graph.Namer
}

func (f *fuser) count(pattern string) { f.rep.Counts[pattern]++ }

func (f *fuser) skip(n *graph.Node, format string, a ...any) {
	if f.o.Log != nil {
		f.o.Log(fmt.Sprintf("%v: not fused: %s", n, fmt.Sprintf(format, a...)))
	}
}

// Fuse rewrites g in place (its main graph; subgraphs of If/Loop are left
// as they are) and reports what it did.
func Fuse(g *graph.Graph, o Options) (*Report, error) {
	f := &fuser{g: g, o: o, rep: &Report{Counts: map[string]int{}}, nm: g.NewNamer()}
	// Shapes let the passes check broadcasting and ranks; inference is best
	// effort and a pass that needs an unknown shape does not fire.
	_ = graph.InferShapes(g)
	f.removeIdentities()
	if !o.NoConstantFolding {
		if err := f.foldConstants(); err != nil {
			return nil, err
		}
	}
	f.foldBatchNorms()
	f.foldConvAffine()
	f.matMulAddToGemm()
	f.foldBatchNorms() // a Gemm made from MatMul+Add may be followed by BN
	if !o.Portable {
		f.fuseActivations()
	}
	g.RemoveUnused()
	if err := g.Sort(); err != nil {
		return nil, fmt.Errorf("fuse: %w", err)
	}
	return f.rep, nil
}
