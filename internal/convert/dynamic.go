package convert

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// Dynamic quantizes the constant weights of MatMul, Gemm, LSTM and GRU in
// g, with activations quantized at run time:
//
//   - MatMul/Gemm become DynamicQuantizeLinear + MatMulInteger + Cast + Mul
//     (+ Add for a bias), what ONNX Runtime's quantize_dynamic writes;
//   - LSTM/GRU keep their float kernel and read int8 weights through a
//     DequantizeLinear (weight-only quantization: the model file shrinks 4x
//     and any runtime runs it).
func Dynamic(g *graph.Graph, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.CheckGraph(g); err != nil {
		return nil, err
	}
	constantsToInitializers(g)
	_ = graph.InferShapes(g)
	rep := newReport()
	nm := g.NewNamer()
	cs := newConsts(g, nm)
	dql := map[*graph.Value][3]*graph.Value{}
	ix := g.Index()
	needOpset := int64(10)
	var out []*graph.Node
	for _, n := range g.Nodes {
		s := cfg.Resolve(n)
		if !graph.IsDefaultDomain(n.Domain) {
			out = append(out, n)
			continue
		}
		for _, sg := range n.Subgraphs() {
			if err := dynamicSubgraph(sg, nm, cfg, rep, &needOpset); err != nil {
				return nil, err
			}
		}
		switch n.OpType {
		case "MatMul", "Gemm":
			nodes, reason, err := dynamicMatMul(g, nm, cs, n, s, dql)
			if err != nil {
				return nil, fmt.Errorf("%v: %v", n, err)
			}
			if reason != "" {
				rep.Float = append(rep.Float, FloatNode{Node: n.Name, OpType: n.OpType, Reason: reason})
				out = append(out, n)
				continue
			}
			rep.Quantized[n.OpType]++
			out = append(out, nodes...)
			needOpset = max(needOpset, 11) // DynamicQuantizeLinear
		case "LSTM", "GRU", "RNN":
			nodes, err := rnnWeights(ix, nm, cs, n, s, rep, &needOpset, cfg.LSTM == "contrib")
			if err != nil {
				return nil, err
			}
			out = append(out, nodes...)
		default:
			out = append(out, n)
		}
	}
	g.Nodes = out
	if rep.Quantized["LSTM (DynamicQuantizeLSTM)"] > 0 {
		if _, ok := g.Opsets[MSDomain]; !ok {
			g.Opsets[MSDomain] = 1
		}
	}
	if err := raiseOpset(g, needOpset); err != nil {
		return nil, err
	}
	pruneUnused(g)
	if err := g.Sort(); err != nil {
		return nil, err
	}
	return rep, nil
}

// dynamicMatMul returns the replacement of a MatMul/Gemm with a constant
// 2-D weight, or a reason to keep it.
func dynamicMatMul(g *graph.Graph, nm *graph.Namer, cs *consts, n *graph.Node, s NodeSpec, dql map[*graph.Value][3]*graph.Value) ([]*graph.Node, string, error) {
	if s.Excluded {
		return nil, "excluded by the config", nil
	}
	a, b := n.Input(0), n.Input(1)
	if !isFloatAct(a) || b == nil || b.Const == nil || b.Const.DType != tensor.Float32 || b.Const.Rank() != 2 {
		return nil, "B is not a 2-D float constant", nil
	}
	if len(n.Outputs) != 1 {
		return nil, "more than one output", nil
	}
	w := b.Const
	var bias *tensor.Tensor
	alpha := float32(1)
	if n.OpType == "Gemm" {
		if ta, _ := n.AttrInt("transA", 0); ta != 0 {
			return nil, "transA=1 is not quantized", nil
		}
		alpha, _ = n.AttrFloat("alpha", 1)
		beta, _ := n.AttrFloat("beta", 1)
		if tb, _ := n.AttrInt("transB", 0); tb != 0 {
			w = transpose2D(w)
		}
		if c := n.Input(2); c != nil {
			if c.Const == nil || c.Const.DType != tensor.Float32 {
				return nil, "C is not a float constant", nil
			}
			bias = c.Const.Clone()
			for i := range bias.F32() {
				bias.F32()[i] *= beta
			}
		}
	}
	ws := s.Weight
	ws.DType = "qint8" // MatMulInteger with DynamicQuantizeLinear's uint8 A
	qw, err := quantizeWeight(w, 1, ws)
	if err != nil {
		return nil, "", err
	}
	if alpha != 1 {
		for i := range qw.scales {
			qw.scales[i] *= alpha
		}
	}
	wd, wsv, wz := cs.weightValues(b.Name, qw)
	var nodes []*graph.Node
	q, ok := dql[a]
	if !ok {
		q = [3]*graph.Value{valueLike(nm, a.Name+"_quantized", a, tensor.Uint8),
			{Name: nm.Name(a.Name + "_scale"), DType: tensor.Float32, Shape: graph.Shape{}},
			{Name: nm.Name(a.Name + "_zero_point"), DType: tensor.Uint8, Shape: graph.Shape{}}}
		nodes = append(nodes, &graph.Node{Name: nm.Name(a.Name + "_DynamicQuantizeLinear"), OpType: "DynamicQuantizeLinear", Inputs: []*graph.Value{a}, Outputs: q[:]})
		dql[a] = q
	}
	out := n.Outputs[0]
	y32 := &graph.Value{Name: nm.Name(out.Name + "_int32"), DType: tensor.Int32, Shape: out.Shape}
	yf := &graph.Value{Name: nm.Name(out.Name + "_cast"), DType: tensor.Float32, Shape: out.Shape}
	sc := &graph.Value{Name: nm.Name(out.Name + "_scale"), DType: tensor.Float32}
	nodes = append(nodes,
		&graph.Node{Name: nm.Name(n.Name + "_MatMulInteger"), OpType: "MatMulInteger", Inputs: []*graph.Value{q[0], wd, q[2], wz}, Outputs: []*graph.Value{y32}},
		&graph.Node{Name: nm.Name(n.Name + "_Cast"), OpType: "Cast", Inputs: []*graph.Value{y32}, Outputs: []*graph.Value{yf}, Attrs: []*graph.Attribute{graph.IntAttr("to", int64(tensor.Float32))}},
		&graph.Node{Name: nm.Name(n.Name + "_scale_Mul"), OpType: "Mul", Inputs: []*graph.Value{q[1], wsv}, Outputs: []*graph.Value{sc}},
	)
	if bias == nil {
		nodes = append(nodes, &graph.Node{Name: nm.Name(n.Name + "_output_Mul"), OpType: "Mul", Inputs: []*graph.Value{yf, sc}, Outputs: []*graph.Value{out}})
		return nodes, "", nil
	}
	ym := &graph.Value{Name: nm.Name(out.Name + "_scaled"), DType: tensor.Float32, Shape: out.Shape}
	bv := g.AddInitializer(nm, n.Input(2).Name+"_scaled", bias)
	nodes = append(nodes,
		&graph.Node{Name: nm.Name(n.Name + "_output_Mul"), OpType: "Mul", Inputs: []*graph.Value{yf, sc}, Outputs: []*graph.Value{ym}},
		&graph.Node{Name: nm.Name(n.Name + "_bias_Add"), OpType: "Add", Inputs: []*graph.Value{ym, bv}, Outputs: []*graph.Value{out}})
	return nodes, "", nil
}

func transpose2D(w *tensor.Tensor) *tensor.Tensor {
	r, c := w.Shape[0], w.Shape[1]
	x := w.F32()
	y := make([]float32, len(x))
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			y[j*r+i] = x[i*c+j]
		}
	}
	return tensor.FromFloat32([]int{c, r}, y)
}

// rnnWeights puts the constant W and R of an LSTM/GRU/RNN behind
// DequantizeLinear (per output channel, axis 1, when the config asks for
// per-channel weights) and returns the nodes that replace n.
func rnnWeights(ix *graph.Index, nm *graph.Namer, cs *consts, n *graph.Node, s NodeSpec, rep *Report, needOpset *int64, contribLSTM bool) ([]*graph.Node, error) {
	if s.Excluded {
		rep.Float = append(rep.Float, FloatNode{Node: n.Name, OpType: n.OpType, Reason: "excluded by the config"})
		return []*graph.Node{n}, nil
	}
	if n.OpType == "LSTM" && contribLSTM {
		return contribDynamicLSTM(ix, nm, cs, n, s, rep)
	}
	var out []*graph.Node
	for i := 1; i <= 2; i++ {
		w := n.Input(i)
		wt := graph.ConstValue(ix, w) // an initializer or a Constant node (in If bodies)
		if wt == nil || wt.DType != tensor.Float32 || wt.Rank() != 3 {
			continue
		}
		if s.Weight.PerChannel() {
			*needOpset = max(*needOpset, 13)
		}
		qw, err := quantizeWeight(wt, 1, s.Weight)
		if err != nil {
			return nil, fmt.Errorf("%v: %v", n, err)
		}
		data, sc, zp := cs.weightValues(w.Name, qw)
		dq := valueLike(nm, w.Name+"_dequantized", w, tensor.Float32)
		dn := &graph.Node{Name: nm.Name(w.Name + "_DequantizeLinear"), OpType: "DequantizeLinear", Inputs: []*graph.Value{data, sc, zp}, Outputs: []*graph.Value{dq}}
		if qw.axis >= 0 {
			dn.Attrs = []*graph.Attribute{graph.IntAttr("axis", int64(qw.axis))}
		}
		out = append(out, dn)
		n.Inputs[i] = dq
	}
	if len(out) > 0 {
		rep.Quantized[n.OpType+" (weights)"]++
	} else {
		rep.Float = append(rep.Float, FloatNode{Node: n.Name, OpType: n.OpType, Reason: "weights are not float constants"})
	}
	return append(out, n), nil
}

// dynamicSubgraph quantizes the RNN weights inside If/Loop bodies (silero's
// LSTM sits in an If branch); the new initializers belong to the body.
func dynamicSubgraph(g *graph.Graph, nm *graph.Namer, cfg Config, rep *Report, needOpset *int64) error {
	cs := newConsts(g, nm)
	ix := g.Index()
	var out []*graph.Node
	for _, n := range g.Nodes {
		for _, sg := range n.Subgraphs() {
			if err := dynamicSubgraph(sg, nm, cfg, rep, needOpset); err != nil {
				return err
			}
		}
		if graph.IsDefaultDomain(n.Domain) && (n.OpType == "LSTM" || n.OpType == "GRU" || n.OpType == "RNN") {
			nodes, err := rnnWeights(ix, nm, cs, n, cfg.Resolve(n), rep, needOpset, cfg.LSTM == "contrib")
			if err != nil {
				return err
			}
			out = append(out, nodes...)
			continue
		}
		out = append(out, n)
	}
	g.Nodes = out
	g.RemoveUnused()
	return nil
}

// contribDynamicLSTM writes com.microsoft DynamicQuantizeLSTM as ONNX
// Runtime's quantize_dynamic does: int8 W and R transposed to
// [dirs, in, 4H] and [dirs, hidden, 4H], with scales and zero points per
// direction ([dirs]) or per gate row ([dirs, 4H]) for per-channel weights.
func contribDynamicLSTM(ix *graph.Index, nm *graph.Namer, cs *consts, n *graph.Node, s NodeSpec, rep *Report) ([]*graph.Node, error) {
	ins := make([]*graph.Value, 12)
	copy(ins, n.Inputs)
	for k, i := range []int{1, 2} {
		w := n.Input(i)
		wt := graph.ConstValue(ix, w)
		if wt == nil || wt.DType != tensor.Float32 || wt.Rank() != 3 {
			rep.Float = append(rep.Float, FloatNode{Node: n.Name, OpType: n.OpType, Reason: "weights are not float constants"})
			return []*graph.Node{n}, nil
		}
		dirs, rows, cols := wt.Shape[0], wt.Shape[1], wt.Shape[2]
		ws := s.Weight
		ws.DType = "qint8"
		flat := tensor.FromFloat32([]int{dirs, rows * cols}, wt.F32())
		qshape := []int{dirs}
		if ws.PerChannel() {
			flat = tensor.FromFloat32([]int{dirs * rows, cols}, wt.F32())
			qshape = []int{dirs, rows}
		}
		ws.Granularity = "per_channel"
		qw, err := quantizeWeight(flat, 0, ws)
		if err != nil {
			return nil, fmt.Errorf("%v: %v", n, err)
		}
		// [dirs, rows, cols] -> [dirs, cols, rows]
		src := qw.data.I8()
		dst := make([]int8, len(src))
		for d := 0; d < dirs; d++ {
			for r := 0; r < rows; r++ {
				for c := 0; c < cols; c++ {
					dst[d*rows*cols+c*rows+r] = src[d*rows*cols+r*cols+c]
				}
			}
		}
		data := cs.g.AddInitializer(nm, w.Name+"_quantized", &tensor.Tensor{DType: tensor.Int8, Shape: []int{dirs, cols, rows}, Data: dst})
		sc := cs.g.AddInitializer(nm, w.Name+"_scale", &tensor.Tensor{DType: tensor.Float32, Shape: qshape, Data: qw.scales})
		zp := cs.g.AddInitializer(nm, w.Name+"_zero_point", zpTensor(tensor.Int8, qshape, qw.zps))
		ins[i] = data
		ins[8+2*k], ins[9+2*k] = sc, zp
	}
	rep.Quantized["LSTM (DynamicQuantizeLSTM)"]++
	return []*graph.Node{{Name: nm.Name(n.Name + "_quant"), OpType: "DynamicQuantizeLSTM", Domain: MSDomain, Inputs: ins, Outputs: n.Outputs, Attrs: n.Attrs}}, nil
}
