package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/qtool/qtool/internal/atomicfile"
	"github.com/qtool/qtool/internal/calibrate"
	"github.com/qtool/qtool/internal/fuse"
	"github.com/qtool/qtool/internal/model"
	"github.com/spf13/cobra"
)

func newCalibrateCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "calibrate MODEL --data [NAME=]DATA... -o TABLE.json",
		Short: "Observe activation ranges on representative data and write a calibration table",
		Long: `Runs the float MODEL over DATA with observers on every float activation (the
graph inputs and every node output) and on the weights, and writes a
calibration table (JSON): per tensor the observer, its settings and statistics
(min/max, histogram) and the quantization parameters (scales, zero points,
axis) that 'qtool convert' uses. The model is first fused as 'qtool fuse
--portable' does (BatchNorm folded, activations kept as standard ops), which
is what convert quantizes; --no-fuse calibrates it as written.

DATA is one of
  file.npy          samples on the first axis; read a sample at a time, so it
                    may be larger than memory
  file.npz          one array per model input (by name), or one array for a
                    single-input model
  folder/           .npy files, one sample each, in name order; or images
                    (.jpg, .jpeg, .png), class subfolders sorted by name
  images.tar        images inside a tar, as a folder (a .tar.gz is expanded
                    once to a temporary file)
A model with several inputs takes one --data NAME=DATA per input (or an .npz).
Each sample must match the model input's dtype and fixed dims; the batch dim
is added (a model with a fixed batch dim of 1 runs sample by sample).

Defaults: histogram observer (PyTorch's HistogramObserver, quint8 per-tensor
affine) for activations, per-channel symmetric MinMax (qint8) for weights.
The config's 'calibration' section changes them, per op type or per tensor,
and holds the image recipe:

  calibration:
    activation: {observer: histogram, dtype: quint8, qscheme: per_tensor_affine}
    weight: {observer: per_channel_minmax, dtype: qint8, qscheme: per_channel_symmetric}
    op_types: [{op_type: Softmax, observer: minmax}]
    tensors: [{name: logits, observer: percentile, percentile: 99.99}]
    skip_nonfinite: false        # true: skip and count samples with NaN/Inf
    preprocess:                  # for image data
      resize: 256                # shorter side; [H, W] for an exact size
      crop: 224                  # center crop; [H, W] allowed
      range: "0..1"              # or "0..255"; or divisor: 256
      mean: [0.485, 0.456, 0.406]
      std: [0.229, 0.224, 0.225]
      color: rgb                 # rgb, bgr or gray
      layout: nchw               # nchw or nhwc (default: from the model input)
    inputs: [{input: ids, path: ids.npy}, {input: mask, path: mask.npy}]

The table is deterministic: the same model, data, config and flags give the
same bytes at any --threads. Tables from disjoint parts of the data (say,
--offset 0 --limit 500 and --offset 500 --limit 500 on two machines) combine
with 'qtool calibrate merge'. The output is written atomically: an interrupted
run leaves no partial file.`,
		Example: `  qtool calibrate mnist-8.onnx --data digits.npy --limit 1000 -o table.json
  qtool calibrate squeezenet.onnx --data cifar10-test.tar --shuffle --seed 1 --limit 1000 \
      --config cifar.yaml -o table.json
  qtool calibrate model.onnx --data ids=ids.npy --data mask=mask.npy --observer minmax -o t.json
  qtool calibrate merge part1.json part2.json -o table.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCalibrate(cmd, s, args[0])
		},
	}
	f := cmd.Flags()
	f.StringArray("data", nil, "data as [NAME=]PATH (.npy, .npz, folder, or .tar of images); repeat for several inputs")
	f.String("observer", "", "activation observer: histogram (default), minmax, moving_average, percentile, entropy")
	f.Int("limit", 0, "use at most N samples (0 = all)")
	f.Int("offset", 0, "skip the first N samples (of the shuffled order with --shuffle)")
	f.Bool("shuffle", false, "visit the samples in a random order fixed by --seed (with --limit: a random subset)")
	f.Uint64("seed", 0, "seed of --shuffle (the same seed picks the same samples on every machine)")
	f.Int("batch", 0, "samples per model run (default 1, or the model's fixed batch dim)")
	f.StringP("output", "o", "", "calibration table to write (JSON)")
	f.Bool("no-fuse", false, "calibrate the model as written, without 'qtool fuse' first (use the same flag with convert)")
	cmd.AddCommand(newCalibrateMergeCmd(s))
	return cmd
}

func newCalibrateMergeCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "merge TABLE.json TABLE.json... -o OUT.json",
		Short: "Merge calibration tables computed on parts of the data",
		Long: `Combines tables of the same model computed on different parts of the data
(separate processes or machines) into the table of all of it: the observers'
statistics are merged (exactly for min/max; histograms are re-binned onto the
union range, within one bin width) and the quantization parameters derived
again. Tables of different models or with different observer settings are
refused.`,
		Example: `  qtool calibrate merge part1.json part2.json part3.json -o table.json`,
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := s.v.GetString("output")
			if out == "" {
				return badInputf("calibrate merge: -o OUT.json is required")
			}
			var merged *calibrate.Table
			for _, p := range args {
				t, err := calibrate.ReadTable(p)
				if err != nil {
					return badInput(err)
				}
				if merged == nil {
					merged = t
					continue
				}
				if merged, err = calibrate.Merge(merged, t); err != nil {
					return badInputf("%s: %v", p, err)
				}
			}
			if err := atomicfile.CheckNotInput(out, args...); err != nil {
				return badInput(err)
			}
			if err := atomicfile.Write(out, merged.Write); err != nil {
				return workFailed(err)
			}
			if !s.quiet() {
				fmt.Fprintf(cmd.OutOrStdout(), "merged %d tables (%d samples, %d tensors) -> %s\n", len(args), merged.Dataset.Samples, len(merged.Tensors), out)
			}
			return nil
		},
	}
	cmd.Flags().StringP("output", "o", "", "merged table to write (JSON)")
	return cmd
}

// dataSpecs reads --data (or the config's calibration.inputs / data).
func dataSpecs(cmd *cobra.Command, s *settings, cfg calibrate.Config) ([]calibrate.DataSpec, error) {
	var raw []string
	if cmd.Flags().Changed("data") {
		raw, _ = cmd.Flags().GetStringArray("data")
	} else {
		switch v := s.v.Get("data").(type) {
		case string:
			if v != "" {
				raw = []string{v}
			}
		case []any:
			for _, x := range v {
				raw = append(raw, fmt.Sprint(x))
			}
		case []string:
			raw = v
		}
	}
	var specs []calibrate.DataSpec
	for _, r := range raw {
		sp := calibrate.DataSpec{Path: r}
		// NAME=PATH, unless the whole string is an existing path.
		if k := strings.IndexByte(r, '='); k > 0 {
			if _, err := os.Stat(r); err != nil {
				sp.Input, sp.Path = r[:k], r[k+1:]
			}
		}
		specs = append(specs, sp)
	}
	specs = append(specs, cfg.Inputs...)
	if len(specs) == 0 {
		return nil, errors.New("no data: give --data PATH (or calibration.inputs in the config)")
	}
	return specs, nil
}

func runCalibrate(cmd *cobra.Command, s *settings, modelPath string) error {
	v := s.v
	out := v.GetString("output")
	if out == "" {
		return badInputf("calibrate: -o TABLE.json is required")
	}
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
	inputs := []string{modelPath}
	for _, sp := range specs {
		inputs = append(inputs, sp.Path)
	}
	if c := v.ConfigFileUsed(); c != "" {
		inputs = append(inputs, c)
	}
	if err := atomicfile.CheckNotInput(out, inputs...); err != nil {
		return badInput(err)
	}
	kind := v.GetString("observer")
	if kind != "" {
		if _, err := calibrate.ParseKind(kind); err != nil {
			return badInputf("--observer: %v", err)
		}
	}
	m, err := model.Load(modelPath)
	if err != nil {
		return badInput(err)
	}
	// Calibrate the graph convert will quantize: convert fuses (with
	// standard ops only) before it reads the table, and the same
	// deterministic rewrite here gives the same tensor names.
	if !v.GetBool("no-fuse") {
		if _, err := fuse.Fuse(m.Graph, fuse.Options{Portable: true}); err != nil {
			return badInputf("%s: %v", modelPath, err)
		}
	}
	// Observer settings are only resolved against the graph; doing it now
	// makes a mistake in them bad input named by the config file, before
	// any data is read, rather than a failure of the run.
	if _, err := calibrate.NewPlan(m.Graph, cfg, kind); err != nil {
		return badInputf("%s: %v", cfgName, err)
	}
	sum, err := calibrate.FileSHA256(modelPath)
	if err != nil {
		return badInput(err)
	}
	opts := calibrate.Options{
		Limit: v.GetInt("limit"), Offset: v.GetInt("offset"), Shuffle: v.GetBool("shuffle"),
		Seed: v.GetUint64("seed"), Batch: v.GetInt("batch"), SkipNonFinite: cfg.SkipNonFinite,
		Preprocess: cfg.Preprocess,
	}
	ds, err := calibrate.Open(specs, calibrate.InputSpecs(m.Graph), opts)
	if err != nil {
		return badInput(err)
	}
	defer ds.Close()

	if ds.Note != "" && !s.quiet() {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: %s\n", ds.Note)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first interrupt, a second one kills as usual.
		<-ctx.Done()
		stop()
	}()
	bar := newProgress(s, "calibrating", "samples")
	ro := calibrate.RunOptions{Threads: s.threads(), Progress: bar.Update()}
	start := time.Now()
	info := calibrate.DatasetInfo{Limit: opts.Limit, Offset: opts.Offset, Shuffle: opts.Shuffle, Seed: opts.Seed}
	tab, err := calibrate.Calibrate(ctx, m.Graph, calibrate.ModelInfo{Path: modelPath, SHA256: sum}, ds, cfg, kind, ro, info)
	bar.Done()
	if err != nil {
		var de *calibrate.DataError
		switch {
		case errors.Is(err, context.Canceled):
			return workFailed(errors.New("calibrate: interrupted; no table written"))
		case errors.As(err, &de):
			return badInput(err)
		}
		return workFailed(fmt.Errorf("%s: %v", modelPath, err))
	}
	if err := atomicfile.Write(out, tab.Write); err != nil {
		return workFailed(err)
	}
	if !s.quiet() {
		el := time.Since(start)
		roles := map[string]int{}
		for _, e := range tab.Tensors {
			roles[e.Role]++
		}
		fmt.Fprintf(cmd.OutOrStdout(), "calibrated %d tensors (%d activations, %d weights, %d constants) on %d samples in %.1fs (%.0f samples/s) -> %s\n",
			len(tab.Tensors), roles[calibrate.RoleActivation], roles[calibrate.RoleWeight], roles[calibrate.RoleConstant],
			tab.Dataset.Samples, el.Seconds(), float64(tab.Dataset.Samples)/el.Seconds(), out)
		if n := tab.Dataset.SkippedNonFinite; n > 0 {
			fmt.Fprintf(cmd.OutOrStdout(), "skipped %d samples with NaN or Inf\n", n)
		}
		if n := tab.Dataset.Dropped; n > 0 {
			fmt.Fprintf(cmd.OutOrStdout(), "dropped %d samples after the last full batch of %d\n", n, tab.Dataset.BatchSize)
		}
	}
	return nil
}

// isTerminal reports whether f is a character device (a terminal), so that
// progress bars never end up in logs or pipes.
