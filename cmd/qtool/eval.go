package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"syscall"

	"github.com/qtool/qtool/internal/atomicfile"
	"github.com/qtool/qtool/internal/calibrate"
	"github.com/qtool/qtool/internal/convert"
	"github.com/qtool/qtool/internal/eval"
	"github.com/qtool/qtool/internal/fuse"
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/runtime/qdq"
	"github.com/qtool/qtool/internal/tensor"
	"github.com/spf13/cobra"
)

func newEvalCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval FLOAT.onnx QUANT.onnx --data DATA [--labels L.npy]",
		Short: "Compare a quantized model with its float original",
		Long: `Runs the float and the quantized model on the same samples and reports what
quantization cost: top-1 and top-5 accuracy of both against labels, how often
their top-1 agree, and the SQNR (dB), cosine similarity and largest absolute
error of the quantized outputs against the float ones.

Labels come from --labels (an .npy of integer classes, one per sample of the
data, before --shuffle/--offset/--limit pick from it) or from the class
subfolders of an image folder or tar (sorted by name). Without labels only
agreement and output error are reported. Top-k ranks the first output's
values of each sample.

--per-layer (implied by --report) compares every quantized activation of a
QDQ model (a QuantizeLinear -> DequantizeLinear pair) with the float model's
tensor of the same name on the same input, like PyTorch's Numeric Suite and
ONNX Runtime's qdq_loss_debug: SQNR and cosine over all samples (summed
signal and noise energy), the largest error, and the share of float values
outside the quantized range (clipped). The table lists the worst first.

--report FILE writes one self-contained HTML page (inline SVG, no external
resources): the summary, per-layer SQNR bars, the histogram of one tensor's
float values with its quantized range (--histogram NAME, default the worst
layer) and the per-layer table. --json prints the whole report as JSON
(an exact layer's SQNR is the string "inf").

--sensitivity quantizes FLOAT again with --table and the config's
'quantization' section (as 'qtool quantize' does: with weight.rounding gptq,
the default, weights are GPTQ-rounded on --rounding-samples samples of DATA)
one layer at a time, every
other layer kept float, and ranks the layers by the output SQNR of that model
(lowest first), with its top-1 drop and agreement. --max-drop X then keeps
the most sensitive layers float, one more at a time, until the top-1 accuracy
drop on DATA is at most X percentage points (the share of changed predictions
without labels), and writes the config that does it (-o CONFIG.yaml, to use
with 'qtool quantize --config CONFIG.yaml', or 'qtool convert --table TABLE
--config CONFIG.yaml', which rounds to nearest); exit 1 when no set
meets the budget. Both evaluate a model per layer: use --limit.

DATA and the image recipe are read as 'qtool calibrate' reads them (the
config's 'calibration' section).`,
		Example: `  qtool eval mnist-8.onnx mnist.int8.onnx --data digits.npy --labels labels.npy
  qtool eval squeezenet.onnx sq.int8.onnx --data cifar10-test.tar --config cifar.yaml \
      --shuffle --seed 1 --limit 1000 --per-layer --report report.html
  qtool eval sq.onnx sq.int8.onnx --data cifar.tar --config ort.yaml --table table.json \
      --limit 500 --sensitivity --max-drop 0.5 -o keep.yaml`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEval(cmd, s, args[0], args[1])
		},
	}
	f := cmd.Flags()
	f.StringArray("data", nil, "data as [NAME=]PATH (.npy, .npz, folder, or .tar of images); repeat for several inputs")
	f.String("labels", "", "integer class labels (.npy, one per sample of the data)")
	f.Int("limit", 0, "evaluate at most N samples (0 = all)")
	f.Int("offset", 0, "skip the first N samples (of the shuffled order with --shuffle)")
	f.Bool("shuffle", false, "visit the samples in a random order fixed by --seed")
	f.Uint64("seed", 0, "seed of --shuffle")
	f.Int("batch", 0, "samples per model run (default 1, or the model's fixed batch dim)")
	f.Bool("json", false, "print the report as JSON")
	f.Bool("per-layer", false, "compare every quantized activation with its float counterpart")
	f.String("report", "", "write a self-contained HTML report to this file (implies --per-layer)")
	f.String("histogram", "", "tensor whose float values the HTML report plots (default: the worst layer)")
	f.Int("top", 30, "per-layer rows in the text table (0 = all)")
	f.Bool("sensitivity", false, "quantize one layer at a time (the rest float) with --table and rank the layers by cost")
	f.Int("rounding-samples", 128, "with weight.rounding gptq: samples whose layer inputs --sensitivity/--max-drop round the weights on, as qtool quantize does")
	f.Float64("max-drop", 0, "find layers to keep float so that the top-1 drop is at most this many percentage points (needs --table and -o)")
	f.String("table", "", "calibration table of FLOAT (qtool calibrate) for --sensitivity and --max-drop")
	f.StringP("output", "o", "", "config file (YAML) that --max-drop writes: the quantization section with the layers to keep float")
	return cmd
}

func runEval(cmd *cobra.Command, s *settings, floatPath, quantPath string) error {
	v := s.v
	cfgName := v.ConfigFileUsed()
	if cfgName == "" {
		cfgName = "config"
	}
	cfg, err := calibrate.DecodeConfig(v.Get("calibration"))
	if err != nil {
		return badInputf("%s: %v", cfgName, err)
	}
	specs, err := dataSpecs(cmd, s, cfg)
	if err != nil {
		return badInput(err)
	}
	reportPath := v.GetString("report")
	if reportPath != "" {
		inputs := []string{floatPath, quantPath}
		for _, sp := range specs {
			inputs = append(inputs, sp.Path)
		}
		if l := v.GetString("labels"); l != "" {
			inputs = append(inputs, l)
		}
		if err := atomicfile.CheckNotInput(reportPath, inputs...); err != nil {
			return badInput(err)
		}
	}
	fm, err := model.Load(floatPath)
	if err != nil {
		return badInput(err)
	}
	qm, err := model.Load(quantPath)
	if err != nil {
		return badInput(err)
	}
	// Scored as 'qtool run' executes it: QDQ patterns on the integer
	// kernels. qm stays as written for the per-layer comparison.
	dm, err := model.Load(quantPath)
	if err != nil {
		return badInput(err)
	}
	if _, err := qdq.Rewrite(dm.Graph); err != nil {
		return badInputf("%s: %v", quantPath, err)
	}
	var labels []int64
	if lp := v.GetString("labels"); lp != "" {
		if labels, err = readLabels(lp); err != nil {
			return badInput(err)
		}
	}
	opts := calibrate.Options{
		Limit: v.GetInt("limit"), Offset: v.GetInt("offset"), Shuffle: v.GetBool("shuffle"),
		Seed: v.GetUint64("seed"), Batch: v.GetInt("batch"), SkipNonFinite: cfg.SkipNonFinite,
		Preprocess: cfg.Preprocess,
	}
	ds, err := calibrate.Open(specs, calibrate.InputSpecs(fm.Graph), opts)
	if err != nil {
		return badInput(err)
	}
	defer ds.Close()
	if labels != nil && len(labels) < ds.Total {
		return badInputf("%s: %d labels for %d samples of data", v.GetString("labels"), len(labels), ds.Total)
	}
	if ds.Note != "" && !s.quiet() {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: %s\n", ds.Note)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	eo := eval.Options{Threads: s.threads(), PerLayer: v.GetBool("per-layer") || reportPath != "", Labels: labels, Deployed: dm.Graph}
	bar := newProgress(s, "evaluating", "samples")
	eo.Progress = bar.Update()
	rep, err := eval.Compare(ctx, fm.Graph, qm.Graph, ds, eo)
	bar.Done()
	if err != nil {
		var ie *eval.InputError
		switch {
		case errors.Is(err, context.Canceled):
			return workFailed(errors.New("eval: interrupted"))
		case errors.As(err, &ie):
			return badInputf("%s vs %s: %v", floatPath, quantPath, err)
		}
		return workFailed(err)
	}
	if v.GetBool("sensitivity") || cmd.Flags().Changed("max-drop") {
		if err := evalSensitivity(ctx, cmd, s, rep, fm.Graph, floatPath, specs, cfg, opts, eo); err != nil {
			return err
		}
	}
	rep.FloatModel, rep.QuantModel = floatPath, quantPath
	rep.FloatBytes, rep.QuantBytes = fileSize(floatPath), fileSize(quantPath)
	if len(ds.Sources) > 0 {
		rep.Data = ds.Sources[0].Path
	}
	if reportPath != "" {
		name := v.GetString("histogram")
		if name == "" && len(rep.Layers) > 0 {
			name = rep.Layers[0].Name
		}
		var h *eval.Histogram
		if name != "" {
			if h = rep.Histogram(name, 64); h == nil {
				return badInputf("--histogram: %q is not a compared quantized tensor of %s", name, quantPath)
			}
		}
		if err := atomicfile.Write(reportPath, func(w io.Writer) error { return rep.WriteHTML(w, h) }); err != nil {
			return workFailed(err)
		}
	}
	out := cmd.OutOrStdout()
	if v.GetBool("json") {
		if err := rep.WriteJSON(out); err != nil {
			return err
		}
		if rep.MaxDrop != nil && !rep.MaxDrop.Met {
			return workFailed(fmt.Errorf("--max-drop %g: %v", v.GetFloat64("max-drop"), eval.ErrBudget))
		}
		return nil
	}
	if err := rep.WriteText(out, v.GetInt("top")); err != nil {
		return err
	}
	if rep.PerLayer && len(rep.Layers) == 0 {
		fmt.Fprintf(out, "\nper layer: no quantized activation of %s has a float counterpart in %s (the comparison needs a QDQ model converted from this float model)\n", quantPath, floatPath)
	}
	if reportPath != "" && !s.quiet() {
		fmt.Fprintf(out, "report -> %s\n", reportPath)
	}
	if rep.MaxDrop != nil && !rep.MaxDrop.Met {
		return workFailed(fmt.Errorf("--max-drop %g: %v", v.GetFloat64("max-drop"), eval.ErrBudget))
	}
	return nil
}

// readLabels reads an .npy of integer class indices (any shape; flattened).
func readLabels(path string) ([]int64, error) {
	t, err := npy.ReadFile(path)
	if err != nil {
		return nil, err
	}
	switch t.DType {
	case tensor.Int64, tensor.Int32, tensor.Int16, tensor.Int8, tensor.Uint8, tensor.Uint16, tensor.Uint32, tensor.Uint64:
	default:
		return nil, fmt.Errorf("%s: labels must be integers, not %v", path, t.DType)
	}
	vals, err := t.AsFloat64()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	out := make([]int64, len(vals))
	for i, x := range vals {
		if x < 0 {
			return nil, fmt.Errorf("%s: label %d is negative (%v)", path, i, x)
		}
		out[i] = int64(x)
	}
	return out, nil
}

// evalSensitivity quantizes FLOAT again with the table and config for each
// variant --sensitivity and --max-drop try (as 'qtool convert' would: fused
// unless the config says no_fuse), and evaluates each on the same data.
func evalSensitivity(ctx context.Context, cmd *cobra.Command, s *settings, rep *eval.Report, fg *graph.Graph, floatPath string, specs []calibrate.DataSpec, ccfg calibrate.Config, dopts calibrate.Options, eo eval.Options) error {
	v := s.v
	tablePath := v.GetString("table")
	if tablePath == "" {
		return badInputf("--sensitivity and --max-drop need --table TABLE.json (qtool calibrate FLOAT ...)")
	}
	maxDrop := cmd.Flags().Changed("max-drop")
	budget := v.GetFloat64("max-drop")
	out := v.GetString("output")
	if maxDrop {
		if budget < 0 || math.IsNaN(budget) || budget > 100 {
			return badInputf("--max-drop %v: want percentage points between 0 and 100", budget)
		}
		if out == "" {
			return badInputf("--max-drop needs -o CONFIG.yaml for the config it finds")
		}
		inputs := []string{floatPath, tablePath}
		for _, sp := range specs {
			inputs = append(inputs, sp.Path)
		}
		if c := v.ConfigFileUsed(); c != "" {
			inputs = append(inputs, c)
		}
		if err := atomicfile.CheckNotInput(out, inputs...); err != nil {
			return badInput(err)
		}
	}
	qcfg, err := quantConfig(s)
	if err != nil {
		return badInput(err)
	}
	if qcfg.Mode != convert.ModeStatic {
		return badInputf("--sensitivity and --max-drop quantize statically; the config's mode is %q", qcfg.Mode)
	}
	tab, err := calibrate.ReadTable(tablePath)
	if err != nil {
		return badInput(err)
	}
	load := func() (*model.Model, error) {
		m, err := model.Load(floatPath)
		if err != nil {
			return nil, &eval.InputError{Err: err}
		}
		if !qcfg.NoFuse {
			if _, err := fuse.Fuse(m.Graph, fuse.Options{Portable: true}); err != nil {
				return nil, err
			}
		}
		return m, nil
	}
	// GPTQ rounding, as 'qtool quantize' would do it: once, on the float
	// model's layer inputs, which do not depend on what else is quantized.
	var rounding *convert.WeightRounding
	if qcfg.GPTQ() {
		m, err := load()
		if err != nil {
			return evalErr(err)
		}
		batches, err := firstBatches(cmd, s, m.Graph, ccfg, v.GetInt("rounding-samples"))
		if err != nil {
			return badInput(err)
		}
		if rounding, err = convert.OptimizeWeights(ctx, m.Graph, batches, qcfg, convert.RoundingOptions{Threads: s.threads()}); err != nil {
			return evalErr(err)
		}
	}
	build := func(keep []string) (*graph.Graph, error) {
		m, err := load()
		if err != nil {
			return nil, err
		}
		c := qcfg
		c.Exclude.Nodes = append(append([]string(nil), qcfg.Exclude.Nodes...), keep...)
		if _, err := convert.Static(m.Graph, tab, c, convert.StaticOptions{Format: c.Format, Rounding: rounding}); err != nil {
			return nil, &eval.InputError{Err: fmt.Errorf("%s with %s: %v", floatPath, tablePath, err)}
		}
		return m.Graph, nil
	}
	// Variants are scored on the integer kernels, as the model the config
	// produces would run.
	deployed := func(keep []string) (*graph.Graph, error) {
		g, err := build(keep)
		if err != nil {
			return nil, err
		}
		if _, err := qdq.Rewrite(g); err != nil {
			return nil, err
		}
		return g, nil
	}
	open := func() (*calibrate.Dataset, error) {
		return calibrate.Open(specs, calibrate.InputSpecs(fg), dopts)
	}
	full, err := build(nil) // as written: QuantizedNodes reads its Q/DQ
	if err != nil {
		return evalErr(err)
	}
	nodes := eval.QuantizedNodes(full)
	ops := map[string]string{}
	for _, n := range full.Nodes {
		ops[n.Name] = n.OpType
	}
	if len(nodes) == 0 {
		return badInputf("%s: quantizing with %s quantizes no named node", floatPath, tablePath)
	}
	sbar := newProgress(s, "sensitivity", "layers")
	costs, err := eval.Sensitivity(ctx, fg, nodes, ops, deployed, open, eo, sbar.Update())
	sbar.Done()
	if err != nil {
		return evalErr(err)
	}
	if v.GetBool("sensitivity") {
		rep.Sensitivity = costs
	}
	if !maxDrop {
		return nil
	}
	ranked := make([]string, len(costs))
	for i, c := range costs {
		ranked[i] = c.Node
	}
	mbar := newProgress(s, "max-drop", "steps")
	steps, err := eval.MaxDrop(ctx, fg, ranked, budget/100, deployed, open, eo, mbar.Update())
	mbar.Done()
	res := &eval.MaxDropResult{Budget: budget / 100, Steps: steps}
	rep.MaxDrop = res
	if errors.Is(err, eval.ErrBudget) {
		return nil
	}
	if err != nil {
		return evalErr(err)
	}
	res.Met = true
	c := qcfg
	c.Exclude.Nodes = append(append([]string(nil), qcfg.Exclude.Nodes...), steps[len(steps)-1].KeepFloat...)
	body, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return workFailed(err)
	}
	last := steps[len(steps)-1].Cost
	err = atomicfile.Write(out, func(w io.Writer) error {
		// JSON is YAML: the section reads back exactly as written.
		_, err := fmt.Fprintf(w, "# qtool eval --max-drop %g: %d layers kept float; top-1 drop %.2f pt, agreement %.2f%% on %s\nquantization: %s\n",
			budget, len(steps[len(steps)-1].KeepFloat), 100*last.Drop, 100*last.Agreement, specs[0].Path, body)
		return err
	})
	if err != nil {
		return workFailed(err)
	}
	res.Config = out
	return nil
}

func evalErr(err error) error {
	var ie *eval.InputError
	switch {
	case errors.Is(err, context.Canceled):
		return workFailed(errors.New("eval: interrupted"))
	case errors.As(err, &ie):
		return badInput(err)
	}
	return workFailed(err)
}
