package main

import (
	"fmt"
	"io"
	"os"

	"github.com/qtool/qtool/internal/atomicfile"
	"github.com/qtool/qtool/internal/calibrate"
	"github.com/qtool/qtool/internal/convert"
	"github.com/qtool/qtool/internal/fuse"
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/spf13/cobra"
)

func newConvertCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "convert MODEL (--table TABLE.json | --dynamic | --fp16 | --fp16-full) -o OUT.onnx",
		Short: "Write a quantized ONNX model (QDQ or QOperator)",
		Long: `Quantizes a float ONNX model and writes ONNX that qtool and ONNX Runtime both run.

  --table TABLE.json   static int8 with the activation ranges of a calibration
                       table ('qtool calibrate'): QDQ (default: QuantizeLinear /
                       DequantizeLinear around the quantized ops, int8 weights and
                       int32 biases behind DequantizeLinear) or --format qoperator
                       (QLinearConv, QLinearMatMul, com.microsoft QGemm, QLinearAdd,
                       QLinearConcat, QLinearAveragePool, ...)
  --dynamic            int8 weights for MatMul/Gemm (DynamicQuantizeLinear +
                       MatMulInteger) and LSTM/GRU (weights behind DequantizeLinear;
                       quantization.lstm: contrib writes com.microsoft
                       DynamicQuantizeLSTM)
  --fp16               float16 weights read through a Cast to float32
  --fp16-full          the whole model in float16: weights, activations and
                       arithmetic types (half the size; qtool's runtime
                       computes each op in float32 and rounds its outputs to
                       float16). Inputs and outputs stay float32 behind a
                       Cast unless --fp16-io.
                       Ops float16 does not suit stay float32 with Casts around
                       them (TopK, Range, CumSum, Min, Max, Upsample, RoiAlign,
                       NonMaxSuppression, ai.onnx.ml and quantization ops,
                       other domains, Resize scales, float size arithmetic);
                       constants beyond ±65504 are clamped, with a warning.
                       Config: mode: fp16 with fp16: {full: true,
                       keep_io_types: true, op_block_list: [...],
                       node_block_list: [...]}
  --fp16-io            with --fp16-full: float16 inputs and outputs too

A model that is already QDQ (PyTorch QAT, ONNX Runtime, qtool) is folded into
QOperator form by --format qoperator without a table: its Q/DQ qparams and
int8 weights are kept.

The model is fused first (BatchNorm folded, standard ops only) unless --no-fuse.
Relu/Clip after a convolution are absorbed into its output range; MaxPool,
Reshape, Transpose, Flatten, Squeeze, Unsqueeze keep their input's qparams;
Softmax/Sigmoid outputs get fixed ranges; ops without int8 kernels stay float.
The config's 'quantization' section chooses dtypes and granularity, per op type
and per node (glob), and excludes nodes:

  quantization:
    format: qdq                          # or qoperator
    activation: {dtype: quint8, scheme: affine, observer: histogram}
    weight: {dtype: qint8, granularity: per_channel, scheme: symmetric}
    op_types: [{op_type: MatMul, weight: {granularity: per_tensor}}]
    nodes: [{name: "conv1*", activation: {dtype: quint8}}]
    exclude: {op_types: [Softmax], nodes: ["head/*"]}

Presets live in configs/ (x86, arm, dynamic, fp16, fp16-full, ort-default).`,
		Example: `  qtool calibrate model.onnx --data calib.npy -o table.json
  qtool convert model.onnx --table table.json -o model.int8.onnx
  qtool convert model.onnx --table table.json --format qoperator -o model.qop.onnx
  qtool convert model.onnx --dynamic -o model.dyn.onnx
  qtool convert model.onnx --fp16 -o model.fp16.onnx
  qtool convert model.onnx --fp16-full -o model.f16.onnx
  qtool convert model.qdq.onnx --format qoperator -o model.qop.onnx`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConvert(cmd, s, args[0])
		},
	}
	f := cmd.Flags()
	f.StringP("output", "o", "", "output ONNX file")
	f.String("table", "", "calibration table (JSON) for static quantization")
	f.String("format", "", "qdq (default) or qoperator")
	f.Bool("dynamic", false, "dynamic quantization (int8 weights, activations quantized at run time)")
	f.Bool("fp16", false, "float16 weights")
	f.Bool("fp16-full", false, "the whole model in float16 (float32 I/O unless --fp16-io)")
	f.Bool("fp16-io", false, "with --fp16-full: float16 graph inputs and outputs")
	f.Bool("no-fuse", false, "do not fuse BatchNorm and constants first")
	return cmd
}

// quantConfig reads the 'quantization' section with --format applied.
// quantConfig reads the config's quantization section; its errors name the
// config file (or say the defaults and flags are at fault without one).
func quantConfig(s *settings) (convert.Config, error) {
	src := s.v.ConfigFileUsed()
	if src == "" {
		src = "quantization settings"
	}
	cfg, err := convert.DecodeConfig(s.v.Get("quantization"))
	if err != nil {
		return cfg, fmt.Errorf("%s: %v", src, err)
	}
	if f := s.v.GetString("format"); f != "" {
		cfg.Format = f
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: %v", src, err)
	}
	return cfg, nil
}

func runConvert(cmd *cobra.Command, s *settings, modelPath string) error {
	out := s.v.GetString("output")
	if out == "" {
		return badInputf("convert: -o OUT.onnx is required")
	}
	cfg, err := quantConfig(s)
	if err != nil {
		return badInput(err)
	}
	mode := cfg.Mode
	table := s.v.GetString("table")
	dyn, fp16, full := s.v.GetBool("dynamic"), s.v.GetBool("fp16"), s.v.GetBool("fp16-full")
	n := 0
	for _, b := range []bool{dyn, fp16, full, table != ""} {
		if b {
			n++
		}
	}
	switch {
	case n > 1:
		return badInputf("convert: give one of --table, --dynamic, --fp16 and --fp16-full")
	case s.v.GetBool("fp16-io") && !full && (n > 0 || mode != convert.ModeFP16 || !cfg.FP16.Full):
		return badInputf("convert: --fp16-io needs --fp16-full (or a config with fp16: {full: true})")
	case dyn:
		mode = convert.ModeDynamic
	case fp16:
		mode = convert.ModeFP16
		cfg.FP16 = convert.FP16Spec{}
	case full:
		mode = convert.ModeFP16
		cfg.FP16.Full = true
	case table != "":
		mode = convert.ModeStatic
	}
	fold := false
	if mode == convert.ModeStatic && table == "" {
		if cfg.Format != convert.FormatQOperator {
			return badInputf("convert: static quantization needs --table TABLE.json (or give --dynamic or --fp16; a QDQ model folds with --format qoperator)")
		}
		fold = true
	}
	inputs := []string{modelPath}
	if table != "" {
		inputs = append(inputs, table)
	}
	if err := atomicfile.CheckNotInput(out, inputs...); err != nil {
		return badInput(err)
	}
	m, err := model.Load(modelPath)
	if err != nil {
		return badInput(err)
	}
	if fold {
		if !convert.IsQDQ(m.Graph) {
			return badInputf("convert: %s has nothing to fold (no QuantizeLinear/DequantizeLinear): give --table TABLE.json", modelPath)
		}
		rep, err := convert.FoldQDQ(m.Graph, cfg)
		if err != nil {
			return workFailed(fmt.Errorf("%s: %v", modelPath, err))
		}
		if err := model.Save(m, out); err != nil {
			return workFailed(err)
		}
		if !s.quiet() {
			printSummary(cmd.OutOrStdout(), modelPath, out, "QDQ folded into qoperator", cfg.Format, rep)
		}
		return nil
	}
	var tab *calibrate.Table
	if mode == convert.ModeStatic {
		if tab, err = calibrate.ReadTable(table); err != nil {
			return badInput(err)
		}
		if sum, err := calibrate.FileSHA256(modelPath); err == nil && sum != tab.Model.SHA256 && !s.quiet() {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s was calibrated on %s (a different file): tensors it does not name stay float\n", table, tab.Model.Path)
		}
	}
	if !s.v.GetBool("no-fuse") && !cfg.NoFuse {
		if _, err := fuse.Fuse(m.Graph, fuse.Options{Portable: true}); err != nil {
			return workFailed(err)
		}
	}
	if err := cfg.CheckGraph(m.Graph); err != nil {
		return badInput(err)
	}
	if s.v.GetBool("fp16-io") {
		keep := false
		cfg.FP16.KeepIOTypes = &keep
	}
	var warn io.Writer = cmd.ErrOrStderr()
	if s.quiet() {
		warn = io.Discard
	}
	if mode == convert.ModeStatic && cfg.GPTQ() {
		fmt.Fprintln(warn, "warning: weight.rounding gptq needs calibration samples, which convert does not read: weights are rounded to nearest (qtool quantize calibrates and rounds with GPTQ in one go)")
	}
	rep, err := convertGraph(m.Graph, mode, cfg, tab, nil, warn)
	if err != nil {
		return workFailed(fmt.Errorf("%s: %v", modelPath, err))
	}
	if err := model.Save(m, out); err != nil {
		return workFailed(err)
	}
	if !s.quiet() {
		printSummary(cmd.OutOrStdout(), modelPath, out, modeName(mode, cfg), cfg.Format, rep)
	}
	return nil
}

// modeName is the mode as the summary says it.
func modeName(mode string, cfg convert.Config) string {
	if mode == convert.ModeFP16 && cfg.FP16.Full {
		return "fp16 full"
	}
	return mode
}

// convertGraph runs the conversion of a mode; warnings (float16 constants
// clamped) go to warn. rounding (static only, may be nil) holds weights
// rounded by convert.OptimizeWeights.
func convertGraph(g *graph.Graph, mode string, cfg convert.Config, tab *calibrate.Table, rounding *convert.WeightRounding, warn io.Writer) (*convert.Report, error) {
	switch mode {
	case convert.ModeDynamic:
		return convert.Dynamic(g, cfg)
	case convert.ModeFP16:
		if !cfg.FP16.Full {
			return convert.Float16(g)
		}
		rep, err := convert.Float16Full(g, cfg.Float16Options())
		if err != nil {
			return nil, err
		}
		under := 0
		for _, c := range rep.Clamped {
			if c.Over > 0 {
				fmt.Fprintf(warn, "warning: %s: %d values beyond float16's range (largest |x| %g) clamped to ±65504\n", c.Name, c.Over, c.MaxAbs)
			}
			under += c.Under
		}
		if under > 0 {
			fmt.Fprintf(warn, "note: %d nonzero constants below float16's smallest subnormal set to ±2^-24 (kept nonzero)\n", under)
		}
		return rep.Report, nil
	}
	return convert.Static(g, tab, cfg, convert.StaticOptions{Format: cfg.Format, Rounding: rounding})
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

// printSummary says what was quantized, what stayed float and why, and the
// file sizes.
func printSummary(w io.Writer, in, out, mode, format string, rep *convert.Report) {
	what := mode
	if mode == convert.ModeStatic {
		what += " " + format
	}
	fmt.Fprintf(w, "%s: %d nodes quantized (%s)\n", in, rep.QuantizedTotal(), what)
	for _, op := range rep.OpTypes() {
		fmt.Fprintf(w, "  %-28s %d\n", op, rep.Quantized[op])
	}
	if rep.GPTQ > 0 {
		fmt.Fprintf(w, "  (%d weights rounded by GPTQ)\n", rep.GPTQ)
	}
	if rep.Activations16 > 0 {
		fmt.Fprintf(w, "  (%d activations stored in 16 bits)\n", rep.Activations16)
	}
	if len(rep.Float) > 0 {
		fmt.Fprintf(w, "%d nodes left float:\n", len(rep.Float))
		for _, f := range rep.Float {
			fmt.Fprintf(w, "  %-12s %-28q %s\n", f.OpType, f.Node, f.Reason)
		}
	}
	a, b := fileSize(in), fileSize(out)
	ratio := 0.0
	if a > 0 {
		ratio = float64(b) / float64(a)
	}
	fmt.Fprintf(w, "size %.2f MB -> %.2f MB (%.2fx), written to %s\n", float64(a)/1e6, float64(b)/1e6, ratio, out)
}
