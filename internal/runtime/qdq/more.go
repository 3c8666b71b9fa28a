package qdq

import (
	"github.com/qtool/qtool/internal/graph"
)

// fuseMore is fuseOp for the patterns of lookup.go, resize.go and norm.go: table
// activations, Resize and the normalizations.
func (r *rewriter) fuseMore(op *graph.Node, qp *qparams) *graph.Node {
	switch {
	case tableOps[op.OpType]:
		return r.lookup(op, qp)
	case op.OpType == "Resize":
		return r.resize(op, qp)
	case normOps[op.OpType]:
		return r.norm(op, qp)
	}
	return nil
}

// tableBinaries moves the com.microsoft QLinearAdd/QLinearMul nodes the
// NHWC pass left alone to com.qtool's ops of the same name: same inputs and
// results bit for bit, but a squeeze-excite product x · s[N, C, 1, 1] runs
// as one code table per plane (ops/qlinear/binarytable.go).
func (r *rewriter) tableBinaries() {
	for _, n := range r.g.Nodes {
		if n.Domain == msDomain && (n.OpType == "QLinearAdd" || n.OpType == "QLinearMul") && len(n.Outputs) == 1 {
			n.Domain = qtoolDomain
		}
	}
}
