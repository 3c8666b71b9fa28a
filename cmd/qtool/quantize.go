package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/qtool/qtool/internal/atomicfile"
	"github.com/qtool/qtool/internal/calibrate"
	"github.com/qtool/qtool/internal/convert"
	"github.com/qtool/qtool/internal/fuse"
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/tensor"
	"github.com/spf13/cobra"
)

func newQuantizeCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quantize MODEL --data [NAME=]DATA... -o OUT.onnx",
		Short: "Fuse, calibrate and convert in one go",
		Long: `Fuses MODEL (BatchNorm folded, standard ops only), calibrates the fused graph on
DATA with the activation observer of the config's 'quantization' section, and
writes the static int8 model (QDQ by default, --format qoperator), then prints
a summary: nodes quantized, nodes left float and why, size before and after.

DATA is what 'qtool calibrate' reads (.npy, .npz, a folder of .npy files or
images, an image .tar); the config's 'calibration' section gives the image
recipe and per-input data. The 'quantization' section is what 'qtool convert'
reads; with mode: dynamic or fp16 no data is needed (configs/fp16.yaml: float16
weights; configs/fp16-full.yaml: the whole model in float16).

Weights are rounded with GPTQ when the config says weight.rounding: gptq (the
default and the x86/arm presets; ort-default rounds to nearest): the float
model runs on the first --rounding-samples samples, and each layer's integers
are chosen so that its output on those inputs moves least, the rounding error
of each input column fed into the columns not yet rounded. Same scales, same
file format, several times less output error per layer than rounding to
nearest (tools/golden/gptq_ref.py cases: 2.4-24x); it costs seconds
(ResNet-18: 12 s on two cores). Layers with more than 2,304 inputs per output
round to nearest (listed).

Where 8-bit activations lose too much, a node or op type can ask for 16-bit
ones (activation: {dtype: quint16} under nodes: or op_types:; int8 weights
stay): those tensors get 16-bit Q/DQ pairs and their nodes run in float in
qtool and ONNX Runtime. 'qtool eval --sensitivity' ranks the layers to pick.`,
		Example: `  qtool quantize mnist-8.onnx --data digits.npy --limit 1000 -o mnist.int8.onnx
  qtool quantize squeezenet.onnx --data cifar.tar --config configs/x86.yaml -o sq.int8.onnx`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runQuantize(cmd, s, args[0])
		},
	}
	f := cmd.Flags()
	f.StringP("output", "o", "", "output ONNX file")
	f.StringArray("data", nil, "calibration data: PATH, or NAME=PATH per model input (repeatable)")
	f.String("format", "", "qdq (default) or qoperator")
	f.Int("limit", 0, "calibrate on at most this many samples (0 = all)")
	f.Int("offset", 0, "skip this many samples first")
	f.Bool("shuffle", false, "pick the samples in a seeded random order")
	f.Uint64("seed", 0, "seed for --shuffle")
	f.Int("batch", 0, "samples per model run (0: the model's fixed batch, else 1)")
	f.Bool("no-fuse", false, "do not fuse BatchNorm and constants first")
	f.Int("rounding-samples", 128, "calibration samples whose layer inputs GPTQ weight rounding fits (with weight.rounding: gptq in the config)")
	f.Int("a16-auto", 0, "give 16-bit activations to the N layers whose promotion helps the output most (scored on --rounding-samples samples; 0 = off)")
	f.Int("bias-correction", 0, "correct conv biases for the mean shift quantization causes, measured on this many calibration samples (0 = off; QDQ only)")
	return cmd
}

func runQuantize(cmd *cobra.Command, s *settings, modelPath string) error {
	v := s.v
	out := v.GetString("output")
	if out == "" {
		return badInputf("quantize: -o OUT.onnx is required")
	}
	cfg, err := quantConfig(s)
	if err != nil {
		return badInput(err)
	}
	ccfg, err := calibrate.DecodeConfig(v.Get("calibration"))
	if err != nil {
		return badInput(err)
	}
	nbc := v.GetInt("bias-correction")
	if nbc < 0 || (nbc > 0 && (cfg.Mode != convert.ModeStatic || cfg.Format == convert.FormatQOperator)) {
		return badInputf("--bias-correction N needs N >= 0 and static QDQ output")
	}
	nrs := v.GetInt("rounding-samples")
	if nrs < 1 && cfg.Mode == convert.ModeStatic && cfg.GPTQ() {
		return badInputf("--rounding-samples N needs N >= 1 for weight.rounding gptq")
	}
	na16 := v.GetInt("a16-auto")
	if na16 < 0 || (na16 > 0 && cfg.Mode != convert.ModeStatic) {
		return badInputf("--a16-auto N needs N >= 0 and static quantization")
	}
	if na16 > 0 && nrs < 1 {
		return badInputf("--a16-auto scores its candidates on --rounding-samples samples: give N >= 1")
	}
	// One interrupt context for the long steps of static quantization
	// (calibration, GPTQ, the 16-bit search): SIGINT stops whichever runs
	// and nothing is written. The other modes keep the default handler.
	ctx := cmd.Context()
	if cfg.Mode == convert.ModeStatic {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	m, err := model.Load(modelPath)
	if err != nil {
		return badInput(err)
	}
	if !v.GetBool("no-fuse") && !cfg.NoFuse {
		if _, err := fuse.Fuse(m.Graph, fuse.Options{Portable: true}); err != nil {
			return workFailed(err)
		}
	}
	if err := cfg.CheckGraph(m.Graph); err != nil {
		return badInput(err)
	}
	var tab *calibrate.Table
	var calib func(convert.Config) (*calibrate.Table, error)
	if cfg.Mode == convert.ModeStatic {
		specs, err := dataSpecs(cmd, s, ccfg)
		if err != nil {
			return badInput(err)
		}
		inputs := []string{modelPath}
		for _, sp := range specs {
			inputs = append(inputs, sp.Path)
		}
		if err := atomicfile.CheckNotInput(out, inputs...); err != nil {
			return badInput(err)
		}
		opts := calibrate.Options{
			Limit: v.GetInt("limit"), Offset: v.GetInt("offset"), Shuffle: v.GetBool("shuffle"),
			Seed: v.GetUint64("seed"), Batch: v.GetInt("batch"), SkipNonFinite: ccfg.SkipNonFinite,
			Preprocess: ccfg.Preprocess,
		}
		sum, err := calibrate.FileSHA256(modelPath)
		if err != nil {
			return badInput(err)
		}
		calib = func(c convert.Config) (*calibrate.Table, error) {
			ds, err := calibrate.Open(specs, calibrate.InputSpecs(m.Graph), opts)
			if err != nil {
				return nil, badInput(err)
			}
			defer ds.Close()
			// The quantization section decides the activation observer;
			// the calibration section contributes data settings only.
			qc := convert.CalibrationConfig(c, m.Graph)
			qc.Inputs, qc.Preprocess, qc.SkipNonFinite = ccfg.Inputs, ccfg.Preprocess, ccfg.SkipNonFinite
			info := calibrate.DatasetInfo{Limit: opts.Limit, Offset: opts.Offset, Shuffle: opts.Shuffle, Seed: opts.Seed}
			t, err := calibrate.Calibrate(ctx, m.Graph, calibrate.ModelInfo{Path: modelPath, SHA256: sum}, ds, qc, "", calibrate.RunOptions{Threads: s.threads()}, info)
			if err != nil {
				var de *calibrate.DataError
				switch {
				case errors.Is(err, context.Canceled):
					return nil, errQuantizeInterrupted
				case errors.As(err, &de):
					return nil, badInput(err)
				}
				return nil, workFailed(fmt.Errorf("%s: %v", modelPath, err))
			}
			return t, nil
		}
		if tab, err = calib(cfg); err != nil {
			return err
		}
		if !s.quiet() {
			fmt.Fprintf(cmd.OutOrStdout(), "calibrated %d tensors on %d samples\n", len(tab.Tensors), tab.Dataset.Samples)
		}
	} else if err := atomicfile.CheckNotInput(out, modelPath); err != nil {
		return badInput(err)
	}
	// The fused float graph as bytes, before conversion changes m: bias
	// correction measures the shift against a copy, the 16-bit search
	// converts fresh copies.
	var fused []byte
	var float *model.Model
	if nbc > 0 || na16 > 0 {
		if fused, err = model.Marshal(m); err != nil {
			return workFailed(err)
		}
	}
	if nbc > 0 {
		if float, err = model.LoadBytes(fused, ""); err != nil {
			return workFailed(err)
		}
	}
	var warn io.Writer = cmd.ErrOrStderr()
	if s.quiet() {
		warn = io.Discard
	}
	// GPTQ and the 16-bit search both work on the first --rounding-samples
	// samples: read them once.
	gptq := cfg.Mode == convert.ModeStatic && cfg.GPTQ()
	var samples []map[string]*tensor.Tensor
	if gptq || na16 > 0 {
		if samples, err = firstBatches(cmd, s, m.Graph, ccfg, nrs); err != nil {
			return badInput(err)
		}
	}
	var rounding *convert.WeightRounding
	if gptq {
		pb := newProgress(s, "GPTQ rounding", "batches")
		rounding, err = convert.OptimizeWeights(ctx, m.Graph, samples, cfg, convert.RoundingOptions{
			Threads: s.threads(), Progress: pb.Update()})
		pb.Done()
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return errQuantizeInterrupted
			}
			return workFailed(fmt.Errorf("%s: %v", modelPath, err))
		}
		if !s.quiet() {
			fmt.Fprintf(cmd.OutOrStdout(), "GPTQ weight rounding: %d layers on %d samples\n", len(rounding.Layers), countSamples(samples))
			for _, f := range rounding.Skipped {
				fmt.Fprintf(cmd.OutOrStdout(), "  %s (%s) rounded to nearest: %s\n", f.Node, f.OpType, f.Reason)
			}
		}
	}
	if na16 > 0 {
		if cfg, tab, err = selectA16(ctx, cmd, s, fused, cfg, tab, calib, rounding, samples, na16); err != nil {
			return err
		}
	}
	rep, err := convertGraph(m.Graph, cfg.Mode, cfg, tab, rounding, warn)
	if err != nil {
		return workFailed(fmt.Errorf("%s: %v", modelPath, err))
	}
	if nbc > 0 {
		batches, err := firstBatches(cmd, s, m.Graph, ccfg, nbc)
		if err != nil {
			return badInput(err)
		}
		n, err := convert.CorrectBias(m.Graph, float.Graph, batches, s.threads())
		if err != nil {
			return workFailed(err)
		}
		if !s.quiet() {
			fmt.Fprintf(cmd.OutOrStdout(), "bias correction: %d convolutions on %d samples\n", n, nbc)
		}
	}
	if err := model.Save(m, out); err != nil {
		return workFailed(err)
	}
	if !s.quiet() {
		printSummary(cmd.OutOrStdout(), modelPath, out, modeName(cfg.Mode, cfg), cfg.Format, rep)
	}
	return nil
}

// errQuantizeInterrupted is what every step of quantize returns on SIGINT.
var errQuantizeInterrupted = workFailed(errors.New("quantize: interrupted; nothing written"))

// selectA16 is --a16-auto: a second calibration with every activation
// 16-bit, then convert.SelectA16 on samples; fused is the fused float
// model, serialized.
func selectA16(ctx context.Context, cmd *cobra.Command, s *settings, fused []byte, cfg convert.Config, tab8 *calibrate.Table, calib func(convert.Config) (*calibrate.Table, error),
	rounding *convert.WeightRounding, samples []map[string]*tensor.Tensor, n int) (convert.Config, *calibrate.Table, error) {
	tab16, err := calib(convert.A16CalibrationConfig(cfg))
	if err != nil {
		return cfg, nil, err
	}
	clone := model.GraphCloner(fused)
	pb := newProgress(s, "16-bit candidates", "layers")
	res, err := convert.SelectA16(ctx, clone, tab8, tab16, cfg, samples, convert.A16Options{N: n, Rounding: rounding, Threads: s.threads(), Progress: pb.Update()})
	pb.Done()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return cfg, nil, errQuantizeInterrupted
		}
		return cfg, nil, workFailed(err)
	}
	if !s.quiet() {
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "16-bit activations: output SQNR %.2f dB with 8 bits everywhere, %.2f dB with %d layers promoted (on %d samples)\n", res.Base, res.Final, len(res.Chosen), countSamples(samples))
		for _, c := range res.Chosen {
			fmt.Fprintf(w, "  %s (%s): %.2f dB alone\n", c.Node, c.OpType, c.SQNR)
		}
	}
	return res.Config, res.Table, nil
}

// countSamples is the number of samples in batches (the first dim of
// each batch's first input).
func countSamples(batches []map[string]*tensor.Tensor) int {
	n := 0
	for _, b := range batches {
		for _, t := range b {
			if len(t.Shape) > 0 {
				n += t.Shape[0]
			}
			break
		}
	}
	return n
}

// firstBatches reads up to n samples of the calibration data into memory.
func firstBatches(cmd *cobra.Command, s *settings, g *graph.Graph, ccfg calibrate.Config, n int) ([]map[string]*tensor.Tensor, error) {
	specs, err := dataSpecs(cmd, s, ccfg)
	if err != nil {
		return nil, err
	}
	v := s.v
	ds, err := calibrate.Open(specs, calibrate.InputSpecs(g), calibrate.Options{
		Limit: n, Offset: v.GetInt("offset"), Shuffle: v.GetBool("shuffle"), Seed: v.GetUint64("seed"),
		Batch: v.GetInt("batch"), SkipNonFinite: ccfg.SkipNonFinite, Preprocess: ccfg.Preprocess})
	if err != nil {
		return nil, err
	}
	defer ds.Close()
	var out []map[string]*tensor.Tensor
	it := ds.Iter()
	for {
		b, err := it.Next(cmd.Context())
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, b.Inputs)
	}
}
