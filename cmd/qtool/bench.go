package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/qtool/qtool/internal/bench"
	"github.com/qtool/qtool/internal/model"
	_ "github.com/qtool/qtool/internal/runtime/ops/all" // every built-in kernel
	"github.com/qtool/qtool/internal/tensor"
	"github.com/spf13/cobra"
)

func newBenchCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench MODEL [MODEL2]",
		Short: "Measure latency, throughput and memory",
		Long: `Times MODEL with qtool's runtime: warm-up runs, then timed runs until the
median is stable, or exactly --runs N. Stable means the median of the most
recent half of the runs is within --tolerance of the median of all of them,
checked after at least --min-runs runs and --min-time; --max-runs and
--max-time end the loop otherwise (the report then says NOT stable).

Prints p50/p90/p99 latency, throughput (samples/s at the median), the
runtime's peak activation memory and the process's peak RSS (VmHWM: it
covers everything the process loaded, both models with two).

Inputs are synthesized from the model's declared shapes (a symbolic first
dim becomes --batch, other symbolic dims 1, or what --dim NAME=N says;
floats get a fixed pseudo-random pattern, the one tools/peers/ort.js uses,
integer inputs 0, or the number --value NAME=X says) unless given with
--input NAME=FILE (.npy or .pb).

With MODEL2 (for example the int8 version of MODEL), the runs of the two
models are interleaved so that a noisy machine slows both alike, and the
latency ratio MODEL2/MODEL and the speed-up are printed. --profile adds the
time per op type and the slowest nodes (it reads the clock around every
node, which costs little next to a convolution but shows on tiny models).`,
		Example: `  qtool bench resnet18.onnx --threads 1
  qtool bench resnet18.onnx resnet18.int8.onnx --threads 1 --runs 50
  qtool bench model.onnx --input input=x.npy --profile --json
  qtool bench silero_vad.onnx --dim sequence=512 --value sr=16000`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return benchModels(cmd, s, args)
		},
	}
	f := cmd.Flags()
	f.Int("runs", 0, "timed runs per model (0 = until the median is stable)")
	f.Int("warmup", 5, "untimed warm-up runs per model")
	f.Int("batch", 1, "size of a symbolic first input dim of synthesized inputs")
	f.StringArrayP("input", "i", nil, "input tensor as NAME=FILE (.npy or .pb), for both models; repeat for several")
	f.StringArray("dim", nil, "size of a symbolic input dim as NAME=N (e.g. sequence=512); repeat for several")
	f.StringArray("value", nil, "fill a synthesized input with one number as NAME=X (e.g. sr=16000); repeat for several")
	f.Bool("profile", false, "time every node and print the time per op type and the slowest nodes")
	f.Bool("json", false, "print the report as JSON")
	f.Int("min-runs", 10, "until-stable mode: fewest timed runs")
	f.Int("max-runs", 100000, "until-stable mode: most timed runs")
	f.Duration("min-time", time.Second, "until-stable mode: shortest timed phase")
	f.Duration("max-time", 10*time.Second, "until-stable mode: time cap of the timed runs")
	f.Float64("tolerance", 0.01, "until-stable mode: relative tolerance of the median")
	return cmd
}

func benchModels(cmd *cobra.Command, s *settings, paths []string) error {
	v := s.v
	runs, warmup, batch := v.GetInt("runs"), v.GetInt("warmup"), v.GetInt("batch")
	switch {
	case runs < 0:
		return badInputf("--runs must not be negative, got %d", runs)
	case warmup < 0:
		return badInputf("--warmup must not be negative, got %d", warmup)
	case batch < 1 || batch > 1<<20:
		return badInputf("--batch must be between 1 and %d, got %d", 1<<20, batch)
	case v.GetFloat64("tolerance") <= 0 || v.GetFloat64("tolerance") >= 1:
		return badInputf("--tolerance must be in (0, 1), got %g", v.GetFloat64("tolerance"))
	}
	inputs, _ := cmd.Flags().GetStringArray("input")
	given := map[string]*tensor.Tensor{}
	sources := map[string]string{}
	for _, spec := range inputs {
		k := strings.IndexByte(spec, '=')
		if k <= 0 {
			return badInputf("--input %q: want NAME=FILE", spec)
		}
		name, file := spec[:k], spec[k+1:]
		if _, dup := given[name]; dup {
			return badInputf("input %q given twice", name)
		}
		t, err := readTensor(file)
		if err != nil {
			return badInput(err)
		}
		given[name], sources[name] = t, file
	}
	dims := map[string]int{}
	dimSpecs, _ := cmd.Flags().GetStringArray("dim")
	for _, spec := range dimSpecs {
		name, val, ok := strings.Cut(spec, "=")
		n, err := strconv.Atoi(val)
		if !ok || name == "" || err != nil || n < 0 || n > 1<<30 {
			return badInputf("--dim %q: want NAME=N with N a size", spec)
		}
		dims[name] = n
	}
	values := map[string]float64{}
	valueSpecs, _ := cmd.Flags().GetStringArray("value")
	for _, spec := range valueSpecs {
		name, val, ok := strings.Cut(spec, "=")
		x, err := strconv.ParseFloat(val, 64)
		if !ok || name == "" || err != nil {
			return badInputf("--value %q: want NAME=NUMBER", spec)
		}
		values[name] = x
	}
	var models []bench.Model
	for _, p := range paths {
		m, err := model.Load(p)
		if err != nil {
			return badInput(err)
		}
		models = append(models, bench.Model{Path: p, Graph: m.Graph, Given: given, Sources: sources})
	}
	c := bench.Config{
		Threads: s.threads(),
		Batch:   batch,
		Dims:    dims,
		Values:  values,
		Profile: v.GetBool("profile"),
		Timing: bench.Options{
			Warmup: warmup, Runs: runs,
			MinRuns: v.GetInt("min-runs"), MaxRuns: v.GetInt("max-runs"),
			MinTime: v.GetDuration("min-time"), MaxTime: v.GetDuration("max-time"), Tolerance: v.GetFloat64("tolerance"),
		},
	}
	bar := newProgress(s, "benchmarking", "runs")
	c.Timing.Progress = bar.Update()
	rep, err := bench.Run(models, c)
	bar.Done()
	if err != nil {
		if bench.IsInputError(err) {
			return badInput(err)
		}
		return workFailed(err)
	}
	w := cmd.OutOrStdout()
	if v.GetBool("json") {
		return rep.WriteJSON(w)
	}
	return rep.WriteText(w)
}
