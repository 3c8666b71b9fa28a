package fuse

import "github.com/qtool/qtool/internal/graph"

// removeIdentities drops Identity nodes and inference-mode Dropout whose
// mask output nobody reads, rewiring readers to the input.
func (f *fuser) removeIdentities() {
	ix := f.g.Index()
	for _, n := range f.g.Nodes {
		if !graph.IsDefaultDomain(n.Domain) || (n.OpType != "Identity" && n.OpType != "Dropout") {
			continue
		}
		in, out := n.Input(0), n.Output(0)
		if in == nil || out == nil {
			continue
		}
		if in.Type != nil && in.Type.Kind != graph.KindTensor {
			continue // sequences and optionals: keep as written
		}
		if n.OpType == "Dropout" {
			if mask := n.Output(1); mask != nil && ix.Uses(mask) > 0 {
				f.skip(n, "its mask output is used")
				continue
			}
			// Dropout in training mode (opset 12+: an input) is not an
			// identity; ratio alone does not matter at inference.
			if tm := n.Input(2); tm != nil {
				c := graph.ConstValue(ix, tm)
				if c == nil || c.Len() != 1 || c.Bools()[0] {
					f.skip(n, "training_mode is not a constant false")
					continue
				}
			}
		}
		switch {
		case !ix.Outputs[out]:
			f.g.ReplaceAllUses(out, in)
		case !ix.Outputs[in] && ix.Producer[in] != nil:
			// The Identity names a graph output: keep that name by making
			// the producer write it directly.
			p := ix.Producer[in]
			for i, v := range p.Outputs {
				if v == in {
					p.Outputs[i] = out
				}
			}
			f.g.ReplaceAllUses(in, out)
		default:
			continue // input is a graph input, constant or another output
		}
		f.g.RemoveNode(n)
		f.count(n.OpType + " removed")
		ix = f.g.Index()
	}
}
