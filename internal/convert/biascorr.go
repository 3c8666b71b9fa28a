package convert

import (
	"fmt"
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// CorrectBias is empirical bias correction (Nagel et al., "Data-Free
// Quantization", section 4.2, with statistics from data): quantizing the
// weights, and clipping activations to calibrated ranges, shifts the mean
// of every convolution's output per channel. Running the float graph f and
// the quantized QDQ graph q over the same samples gives each channel's
// shift, which is subtracted from the int32 bias. q must come from Static
// (QDQ form) applied to a copy of f; convolutions are matched by node name.
// It returns how many convolutions were corrected.
func CorrectBias(q, f *graph.Graph, batches []map[string]*tensor.Tensor, threads int) (int, error) {
	type pair struct {
		qout, fout *graph.Value   // the output after the Q/DQ pair, and f's
		bias       *tensor.Tensor // int32 initializer data
		scales     []float32
	}
	// The outputs as the next layer sees them (after the absorbed
	// Relu/Clip and the Q/DQ pair), matched by value name.
	fvals := map[string]*graph.Value{}
	for _, n := range f.Nodes {
		for _, v := range n.Outputs {
			if v != nil {
				fvals[v.Name] = v
			}
		}
	}
	qix := q.Index()
	var pairs []*pair
	for _, n := range q.Nodes {
		if n.OpType != "Conv" || n.Input(2) == nil || len(qix.Consumers[n.Outputs[0]]) != 1 {
			continue
		}
		qn := qix.Consumers[n.Outputs[0]][0]
		if qn.OpType != "QuantizeLinear" || len(qix.Consumers[qn.Outputs[0]]) != 1 {
			continue
		}
		post := qix.Consumers[qn.Outputs[0]][0].Outputs[0]
		fv := fvals[post.Name]
		if fv == nil {
			continue
		}
		dq := qix.Producer[n.Input(2)]
		if dq == nil || dq.OpType != "DequantizeLinear" || dq.Inputs[0].Const == nil || dq.Inputs[0].Const.DType != tensor.Int32 {
			continue
		}
		sc := dq.Inputs[1].Const
		if sc == nil || sc.DType != tensor.Float32 {
			continue
		}
		b := dq.Inputs[0].Const
		scales := sc.F32()
		if len(scales) == 1 {
			scales = make([]float32, b.Len())
			for i := range scales {
				scales[i] = sc.F32()[0]
			}
		}
		pairs = append(pairs, &pair{qout: post, fout: fv, bias: b, scales: scales})
	}
	if len(pairs) == 0 {
		return 0, nil
	}
	var fv []*graph.Value
	for _, p := range pairs {
		fv = append(fv, p.fout)
	}
	mf, err := channelMeans(f, fv, batches, threads)
	if err != nil {
		return 0, fmt.Errorf("bias correction, float graph: %v", err)
	}
	// Layer by layer in graph order: each correction changes what the
	// later layers see, so their shift is measured after it.
	for i, p := range pairs {
		mq, err := channelMeans(q, []*graph.Value{p.qout}, batches, threads)
		if err != nil {
			return 0, fmt.Errorf("bias correction, quantized graph: %v", err)
		}
		b := p.bias.I32()
		if len(mq[0]) != len(b) || len(mf[i]) != len(b) {
			continue
		}
		for c := range b {
			d := math.RoundToEven((mq[0][c] - mf[i][c]) / float64(p.scales[c]))
			b[c] = int32(math.Max(math.MinInt32, math.Min(math.MaxInt32, float64(b[c])-d)))
		}
	}
	return len(pairs), nil
}

// channelMeans runs g over the batches and returns the mean of each value
// per channel (axis 1).
func channelMeans(g *graph.Graph, vals []*graph.Value, batches []map[string]*tensor.Tensor, threads int) ([][]float64, error) {
	saved := g.Outputs
	g.Outputs = append(append([]*graph.Value(nil), saved...), vals...)
	defer func() { g.Outputs = saved }()
	s, err := runtime.NewSession(g, runtime.Options{Threads: threads})
	if err != nil {
		return nil, err
	}
	sums := make([][]float64, len(vals))
	counts := make([]float64, len(vals))
	for _, in := range batches {
		out, err := s.Run(in)
		if err != nil {
			return nil, err
		}
		for i, v := range vals {
			t := out[v.Name]
			if t == nil || t.DType != tensor.Float32 || t.Rank() < 2 {
				continue
			}
			c := t.Shape[1]
			inner := t.Len() / (t.Shape[0] * c)
			if sums[i] == nil {
				sums[i] = make([]float64, c)
			}
			x := t.F32()
			for j, f := range x {
				sums[i][(j/inner)%c] += float64(f)
			}
			counts[i] += float64(t.Shape[0] * inner)
		}
	}
	for i := range sums {
		for c := range sums[i] {
			sums[i][c] /= counts[i]
		}
	}
	return sums, nil
}
