package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/qtool/qtool/internal/calibrate"
	"github.com/qtool/qtool/internal/graph"
)

// Variant builds the quantized graph of the float model with the named
// nodes kept in float (convert's exclude.nodes). Each call returns a new
// graph.
type Variant func(keepFloat []string) (*graph.Graph, error)

// Opener opens the evaluation data afresh (a dataset is walked once per
// model variant).
type Opener func() (*calibrate.Dataset, error)

// QuantizedNodes lists the nodes of a QDQ graph that run on quantized
// activations or weights (an input comes from a DequantizeLinear), in node
// order: the layers sensitivity analysis quantizes one at a time. Nodes
// without a name cannot be named in a config and are left out.
func QuantizedNodes(q *graph.Graph) []string {
	ix := q.Index()
	var out []string
	for _, n := range q.Nodes {
		if n.Name == "" || n.OpType == "QuantizeLinear" || n.OpType == "DequantizeLinear" {
			continue
		}
		for _, in := range n.Inputs {
			if p := ix.Producer[in]; in != nil && p != nil && p.OpType == "DequantizeLinear" {
				out = append(out, n.Name)
				break
			}
		}
	}
	return out
}

// Cost is what quantizing some layers costs against the float model.
type Cost struct {
	Node   string `json:"node,omitempty"`
	OpType string `json:"op_type,omitempty"`
	// Drop is the top-1 accuracy drop (a fraction) with labels, else the
	// share of samples whose top-1 changed.
	Drop       float64 `json:"drop"`
	Agreement  float64 `json:"top1_agreement"`
	OutputSQNR Float   `json:"output_sqnr_db"`
}

func costOf(r *Report) Cost {
	c := Cost{Agreement: r.Summary.Agreement, OutputSQNR: Float(math.NaN())}
	if r.Summary.Float != nil {
		c.Drop = r.Summary.Float.Top1 - r.Summary.Quant.Top1
	} else {
		c.Drop = 1 - r.Summary.Agreement
	}
	if len(r.Outputs) > 0 {
		c.OutputSQNR = r.Outputs[0].SQNR
	}
	return c
}

func evalVariant(ctx context.Context, fg *graph.Graph, build Variant, keep []string, open Opener, o Options) (Cost, error) {
	qg, err := build(keep)
	if err != nil {
		return Cost{}, err
	}
	ds, err := open()
	if err != nil {
		return Cost{}, &InputError{err}
	}
	defer ds.Close()
	// The variant is both the graph and what is scored.
	o.PerLayer, o.Progress, o.Deployed = false, nil, nil
	r, err := Compare(ctx, fg, qg, ds, o)
	if err != nil {
		return Cost{}, err
	}
	return costOf(r), nil
}

// Sensitivity quantizes one layer at a time (every other layer of nodes
// kept float) and returns each layer's cost, most costly first: by output
// SQNR, lowest first, which ranks layers even where the accuracy of a small
// evaluation set does not move (ties by drop, then name).
func Sensitivity(ctx context.Context, fg *graph.Graph, nodes []string, ops map[string]string, build Variant, open Opener, o Options, progress func(done, total int)) ([]Cost, error) {
	var out []Cost
	for i, n := range nodes {
		keep := make([]string, 0, len(nodes)-1)
		keep = append(keep, nodes[:i]...)
		keep = append(keep, nodes[i+1:]...)
		c, err := evalVariant(ctx, fg, build, keep, open, o)
		if err != nil {
			return nil, fmt.Errorf("node %q alone: %w", n, err)
		}
		c.Node, c.OpType = n, ops[n]
		out = append(out, c)
		if progress != nil {
			progress(i+1, len(nodes))
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := float64(out[i].OutputSQNR), float64(out[j].OutputSQNR)
		if a != b && !math.IsNaN(a) && !math.IsNaN(b) {
			return a < b
		}
		if out[i].Drop != out[j].Drop {
			return out[i].Drop > out[j].Drop
		}
		return out[i].Node < out[j].Node
	})
	return out, nil
}

// Step is one model MaxDrop tried: the layers kept float and the cost.
type Step struct {
	KeepFloat []string `json:"keep_float"`
	Cost      Cost     `json:"cost"`
}

// ErrBudget is returned by MaxDrop when even keeping every ranked layer
// float does not meet the budget.
var ErrBudget = errors.New("no set of float layers meets the budget")

// MaxDrop keeps the most sensitive layers of ranked in float, one more at a
// time (the greedy order of the ranking), until the drop is at most
// budget; it returns every step tried, the last one meeting the budget.
func MaxDrop(ctx context.Context, fg *graph.Graph, ranked []string, budget float64, build Variant, open Opener, o Options, progress func(done, total int)) ([]Step, error) {
	var steps []Step
	for k := 0; k <= len(ranked); k++ {
		keep := append([]string(nil), ranked[:k]...)
		c, err := evalVariant(ctx, fg, build, keep, open, o)
		if err != nil {
			return steps, fmt.Errorf("%d layers float: %w", k, err)
		}
		steps = append(steps, Step{KeepFloat: keep, Cost: c})
		if progress != nil {
			progress(k+1, len(ranked)+1)
		}
		// Accuracies are ratios of sample counts: a drop equal to the
		// budget must not fail on the last bit of a float subtraction.
		if c.Drop <= budget+1e-9 {
			return steps, nil
		}
	}
	return steps, ErrBudget
}
