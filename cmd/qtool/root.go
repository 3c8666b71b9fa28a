package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	qrt "github.com/qtool/qtool/internal/runtime"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// settings is the merged configuration of one invocation: flags win over
// QTOOL_* environment variables, which win over the config file.
type settings struct {
	v *viper.Viper
}

func newRootCmd() *cobra.Command {
	s := &settings{v: newViper()}
	root := &cobra.Command{
		Use:   "qtool",
		Short: "Quantize float ONNX models to fast, accurate int8 and run them",
		Long: `qtool turns float ONNX models (as exported by PyTorch, TensorFlow or Keras) into
int8 models that other runtimes load (QDQ or QOperator ONNX), and runs both with
its own runtime.

The pipeline, one file per step so each can be inspected or replaced:
  qtool inspect    what a model holds: opsets, inputs and outputs, ops
  qtool run        run any model on .npy or .pb inputs      ONNX -> outputs as .npy
  qtool fuse       fold BatchNorm, fuse activations         float ONNX -> float ONNX
  qtool calibrate  observe activation ranges on data         float ONNX -> table.json
  qtool convert    quantize with a calibration table         float ONNX -> int8 ONNX
  qtool quantize   fuse + calibrate + convert in one go
  qtool eval       accuracy and per-layer error, float vs int8
  qtool bench      latency, throughput and memory

Configuration: --config FILE (YAML), else ./qtool.yaml if present. Every
setting can also be given as an environment variable QTOOL_<KEY> (for
example QTOOL_THREADS=2); command-line flags win over both.

Exit codes: 0 success, 1 the work failed (e.g. an accuracy budget was not met),
2 bad usage or bad input (one line naming the file and the problem).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionString(),
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if mb, err := cmd.Flags().GetInt64("max-tensor-mb"); err == nil {
				qrt.SetMaxTensorBytes(min(max(mb, 0), 1<<40) << 20)
			}
			return s.load(cmd)
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	pf := root.PersistentFlags()
	pf.String("config", "", "YAML configuration file (default ./qtool.yaml if present)")
	pf.Int("threads", 0, "worker threads (0 = number of CPUs)")
	pf.Bool("quiet", false, "no progress bars or informational messages")
	pf.Int64("max-tensor-mb", qrt.DefaultMaxTensorBytes>>20, "largest tensor the runtime may allocate, in MiB (0 = no limit)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return badInputf("%v (see '%s --help')", err, c.CommandPath())
	})

	root.AddCommand(
		newVersionCmd(),
		newInspectCmd(s),
		newRunCmd(s),
		newFuseCmd(s),
		newBenchCmd(s),
		newConvertCmd(s),
		newQuantizeCmd(s),
		newCalibrateCmd(s),
		newEvalCmd(s),
	)
	return root
}

func versionString() string {
	return fmt.Sprintf("qtool %s (%s, %s/%s)", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print qtool's version, Go version and platform",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), versionString())
			return nil
		},
	}
}

func newViper() *viper.Viper {
	v := viper.New()
	v.SetEnvPrefix("QTOOL")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_", ".", "_"))
	v.AutomaticEnv()
	return v
}

// load reads the config file and environment and binds the command's flags,
// so that s.v answers with flag > env > file > default precedence.
func (s *settings) load(cmd *cobra.Command) error {
	v := s.v
	var bindErr error
	bind := func(f *pflag.Flag) {
		if err := v.BindPFlag(f.Name, f); err != nil && bindErr == nil {
			bindErr = err
		}
	}
	cmd.Flags().VisitAll(bind)
	cmd.InheritedFlags().VisitAll(bind)
	if bindErr != nil {
		return bindErr
	}
	cfg, _ := cmd.Flags().GetString("config")
	if cfg == "" {
		cfg = os.Getenv("QTOOL_CONFIG")
	}
	if cfg == "" {
		if _, err := os.Stat("qtool.yaml"); err == nil {
			cfg = "qtool.yaml"
		}
	}
	if cfg != "" {
		v.SetConfigFile(cfg)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			var nf viper.ConfigFileNotFoundError
			if errors.As(err, &nf) || os.IsNotExist(errors.Unwrap(err)) {
				return badInputf("%s: config file not found", cfg)
			}
			return badInputf("%s: %v", cfg, oneLine(err.Error()))
		}
		if err := checkConfigKeys(cmd.Root(), cfg, readConfigOnly(cfg)); err != nil {
			return badInput(err)
		}
	}
	return nil
}

// threads returns the configured thread count (0 means all CPUs).
func (s *settings) threads() int {
	n := s.v.GetInt("threads")
	if n <= 0 {
		n = runtime.NumCPU()
	}
	return n
}

func (s *settings) quiet() bool { return s.v.GetBool("quiet") }
