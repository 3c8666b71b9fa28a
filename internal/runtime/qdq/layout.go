package qdq

import (
	"github.com/qtool/qtool/internal/graph"
)

// channelsLast keeps 2-D integer convolutions and what sits between them
// (QLinearAdd, QLinearGlobalAveragePool) in NHWC: each QLinearConv becomes
// com.microsoft QLinearConv with channels_last=1, as ONNX Runtime's NHWC
// transformer does, and a com.qtool Transpose goes only where a value enters
// or leaves such a region. com.qtool MaxPool2d and LookupTable follow their
// input into NHWC. The conv kernels work on NHWC pixels, so without
// this every conv transposed its input to NHWC and its output back (a
// quarter of MobileNetV2's time).
func (r *rewriter) channelsLast() int {
	g := r.g
	for _, n := range g.Nodes {
		for _, a := range n.Attrs {
			if a.Type == graph.AttrGraph || a.Type == graph.AttrGraphs {
				return 0 // values read inside subgraphs are not visible here
			}
		}
	}
	twin := map[*graph.Value]*graph.Value{}  // NCHW value → its NHWC copy
	entry := map[*graph.Value]*graph.Value{} // NCHW value → Transpose to NHWC
	exited := map[*graph.Value]bool{}
	var out []*graph.Node
	converted := 0

	nhwc := func(v *graph.Value) *graph.Value {
		if t := twin[v]; t != nil {
			return t
		}
		if t := entry[v]; t != nil {
			return t
		}
		t := &graph.Value{Name: r.nm.Name(v.Name + "_nhwc"), DType: v.DType, Shape: permShape(v.Shape, 0, 2, 3, 1)}
		out = append(out, r.transpose(v, t, 0, 2, 3, 1))
		entry[v] = t
		return t
	}
	rank4 := func(v *graph.Value) bool {
		return v != nil && (twin[v] != nil || entry[v] != nil || len(v.Shape) == 4)
	}
	// retarget makes n write an NHWC twin of its output.
	retarget := func(n *graph.Node) {
		y := n.Outputs[0]
		t := &graph.Value{Name: r.nm.Name(y.Name + "_nhwc"), DType: y.DType, Shape: permShape(y.Shape, 0, 2, 3, 1)}
		n.Outputs[0] = t
		twin[y] = t
		converted++
	}
	setAttr := func(n *graph.Node, a *graph.Attribute) {
		for i, b := range n.Attrs {
			if b.Name == a.Name {
				n.Attrs[i] = a
				return
			}
		}
		n.Attrs = append(n.Attrs, a)
	}
	for _, n := range g.Nodes {
		switch {
		case n.OpType == "QLinearConv" && n.Domain == "" && len(n.Outputs) == 1 &&
			n.Input(3) != nil && n.Input(3).Const != nil && n.Input(3).Const.Rank() == 4 && n.Input(0) != nil:
			n.Inputs[0] = nhwc(n.Inputs[0])
			n.Domain = msDomain
			setAttr(n, graph.IntAttr("channels_last", 1))
			retarget(n)
			out = append(out, n)
			continue
		case n.OpType == "QLinearAdd" && n.Domain == msDomain && len(n.Outputs) == 1 && len(n.Inputs) >= 6 &&
			(twin[n.Inputs[0]] != nil || twin[n.Inputs[3]] != nil) && rank4(n.Inputs[0]) && rank4(n.Inputs[3]):
			// Both operands move to NHWC by the same permutation, so
			// broadcasting between them is unchanged.
			n.Inputs[0], n.Inputs[3] = nhwc(n.Inputs[0]), nhwc(n.Inputs[3])
			retarget(n)
			out = append(out, n)
			continue
		case n.OpType == "LookupTable" && n.Domain == qtoolDomain && len(n.Outputs) == 1 &&
			n.Input(0) != nil && twin[n.Inputs[0]] != nil:
			// Elementwise: the layout does not matter (MobileNetV3's
			// hardswish between convs).
			n.Inputs[0] = twin[n.Inputs[0]]
			retarget(n)
			out = append(out, n)
			continue
		case (n.OpType == "QLinearGlobalAveragePool" && n.Domain == msDomain || n.OpType == "MaxPool2d" && n.Domain == qtoolDomain) &&
			len(n.Outputs) == 1 && n.Input(0) != nil && twin[n.Inputs[0]] != nil:
			n.Inputs[0] = twin[n.Inputs[0]]
			setAttr(n, graph.IntAttr("channels_last", 1))
			retarget(n)
			out = append(out, n)
			continue
		}
		for _, v := range n.Inputs {
			if t := twin[v]; t != nil && !exited[v] {
				out = append(out, r.transpose(t, v, 0, 3, 1, 2))
				exited[v] = true
			}
		}
		out = append(out, n)
	}
	for _, v := range g.Outputs {
		if t := twin[v]; t != nil && !exited[v] {
			out = append(out, r.transpose(t, v, 0, 3, 1, 2))
			exited[v] = true
		}
	}
	g.Nodes = out
	return converted
}

func (r *rewriter) transpose(x, y *graph.Value, perm ...int64) *graph.Node {
	return &graph.Node{Name: r.nm.Name(x.Name + "_layout"), OpType: "Transpose", Domain: qtoolDomain,
		Inputs: []*graph.Value{x}, Outputs: []*graph.Value{y}, Attrs: []*graph.Attribute{graph.IntsAttr("perm", perm)}}
}

func permShape(s graph.Shape, perm ...int) graph.Shape {
	if len(s) != len(perm) {
		return nil
	}
	p := make(graph.Shape, len(perm))
	for i, a := range perm {
		p[i] = s[a]
	}
	return p
}
