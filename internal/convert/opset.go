package convert

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// raiseOpset lifts g's ai.onnx opset to at least target, rewriting the
// operators whose form changed on the way (attributes that became inputs,
// Softmax's axis semantics). An operator whose change it cannot rewrite is
// an error naming it, rather than a model that silently means something
// else at the new opset.
func raiseOpset(g *graph.Graph, target int64) error {
	from := g.Opset("")
	if from >= target {
		return nil
	}
	nm := g.NewNamer()
	ix := g.Index()
	ints := func(base string, v []int64) *graph.Value {
		return g.AddInitializer(nm, base, tensor.FromInt64([]int{len(v)}, v))
	}
	for _, n := range g.Nodes {
		if !graph.IsDefaultDomain(n.Domain) {
			continue
		}
		if len(n.Subgraphs()) > 0 {
			return fmt.Errorf("%v: raising the opset from %d to %d through subgraphs is not supported", n, from, target)
		}
		switch n.OpType {
		case "Squeeze", "Unsqueeze", "ReduceSum":
			if from < 13 && target >= 13 {
				if a := n.Attr("axes"); a != nil {
					n.Inputs = append(n.Inputs[:1:1], ints(n.Name+"_axes", a.Ints))
					n.RemoveAttr("axes")
				}
			}
		case "Split":
			if from < 13 && target >= 13 {
				if a := n.Attr("split"); a != nil {
					n.Inputs = append(n.Inputs[:1:1], ints(n.Name+"_split", a.Ints))
					n.RemoveAttr("split")
				}
			}
		case "Softmax", "LogSoftmax", "Hardmax":
			if from < 13 && target >= 13 {
				axis, _ := n.AttrInt("axis", 1)
				x := n.Input(0)
				if x == nil || x.Shape == nil {
					return fmt.Errorf("%v: rank unknown, cannot raise the opset from %d to %d", n, from, target)
				}
				r := int64(len(x.Shape))
				if axis < 0 {
					axis += r
				}
				if axis != r-1 {
					return fmt.Errorf("%v: opset-%d %s over axes %d.. has no opset-13 equivalent here", n, from, n.OpType, axis)
				}
				n.SetAttr(graph.IntAttr("axis", -1))
			}
		case "Clip":
			if from < 11 && target >= 11 {
				lo, hi, ok := clipBounds(ix, n)
				if !ok {
					return fmt.Errorf("%v: bounds are not constant", n)
				}
				n.RemoveAttr("min")
				n.RemoveAttr("max")
				n.Inputs = []*graph.Value{n.Inputs[0],
					g.AddInitializer(nm, n.Name+"_min", tensor.Scalar(lo)),
					g.AddInitializer(nm, n.Name+"_max", tensor.Scalar(hi))}
			}
		case "Pad":
			if from < 11 && target >= 11 {
				pads, _ := n.AttrInts("pads", nil)
				val, _ := n.AttrFloat("value", 0)
				n.RemoveAttr("pads")
				n.RemoveAttr("value")
				n.Inputs = []*graph.Value{n.Inputs[0], ints(n.Name+"_pads", pads),
					g.AddInitializer(nm, n.Name+"_value", tensor.Scalar(val))}
			}
		case "Slice":
			if from < 10 && target >= 10 {
				st, _ := n.AttrInts("starts", nil)
				en, _ := n.AttrInts("ends", nil)
				ins := []*graph.Value{n.Inputs[0], ints(n.Name+"_starts", st), ints(n.Name+"_ends", en)}
				if ax, _ := n.AttrInts("axes", nil); ax != nil {
					ins = append(ins, ints(n.Name+"_axes", ax))
				}
				n.Inputs = ins
				n.RemoveAttr("starts")
				n.RemoveAttr("ends")
				n.RemoveAttr("axes")
			}
		case "TopK":
			if from < 10 && target >= 10 {
				k, _ := n.AttrInt("k", 1)
				n.Inputs = []*graph.Value{n.Inputs[0], ints(n.Name+"_k", []int64{k})}
				n.RemoveAttr("k")
			}
		case "Upsample", "Resize", "Scan":
			return fmt.Errorf("%v: raising the opset from %d to %d is not supported for %s", n, from, target, n.OpType)
		case "Dropout":
			if from < 12 && target >= 12 {
				n.RemoveAttr("ratio") // an input from 12 on; inference ignores it
			}
		}
	}
	g.Opsets[""] = target
	return nil
}
