package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/qtool/qtool/internal/atomicfile"
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/runtime"
	_ "github.com/qtool/qtool/internal/runtime/ops/all" // every built-in kernel
	"github.com/qtool/qtool/internal/runtime/qdq"
	"github.com/qtool/qtool/internal/tensor"
	"github.com/spf13/cobra"
)

func newRunCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run MODEL --input [NAME=]FILE ... [--output-dir DIR]",
		Short: "Run a model on input tensors and save its outputs as .npy",
		Long: `Runs MODEL (float or quantized ONNX) with qtool's runtime.

Each --input is FILE or NAME=FILE, where FILE is a NumPy .npy file or a
serialized ONNX TensorProto (.pb, as in the ONNX backend tests). Without
NAME, inputs are matched to the model's inputs in order. Every output is
written to DIR/<output name>.npy (characters other than letters, digits,
'.', '-' and '_' in the name become '_').`,
		Example: `  qtool run mnist-8.onnx --input Input3=digit.npy --output-dir out
  qtool run model.onnx --input input_0.pb --threads 1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			inputs, _ := cmd.Flags().GetStringArray("input")
			o := runOpts{
				outDir:  s.v.GetString("output-dir"),
				threads: s.threads(),
				print:   s.v.GetBool("print"),
				quiet:   s.quiet(),
			}
			return runModel(cmd, args[0], inputs, o)
		},
	}
	cmd.Flags().StringArrayP("input", "i", nil, "input tensor as [NAME=]FILE (.npy or .pb); repeat for several inputs")
	cmd.Flags().String("output-dir", ".", "folder for the output .npy files")
	cmd.Flags().Bool("print", false, "also print each output's first values and its argmax over the last axis")
	return cmd
}

func readTensor(path string) (*tensor.Tensor, error) {
	if strings.HasSuffix(strings.ToLower(path), ".npy") {
		return npy.ReadFile(path)
	}
	if strings.HasSuffix(strings.ToLower(path), ".pb") {
		return model.ReadTensorFile(path)
	}
	return nil, fmt.Errorf("%s: unknown input format (want .npy or .pb)", path)
}

type runOpts struct {
	outDir       string
	threads      int
	print, quiet bool
}

func runModel(cmd *cobra.Command, modelPath string, inputSpecs []string, o runOpts) error {
	outDir := o.outDir
	m, err := model.Load(modelPath)
	if err != nil {
		return badInput(err)
	}
	// QDQ models run on the integer kernels: DQ -> op -> Q patterns become
	// QLinear ops (float models are left as they are).
	if _, err := qdq.Rewrite(m.Graph); err != nil {
		return badInputf("%s: %v", modelPath, err)
	}
	sess, err := runtime.NewSession(m.Graph, runtime.Options{Threads: o.threads})
	if err != nil {
		return badInputf("%s: %v", modelPath, err)
	}
	names := sess.InputNames()
	feeds := map[string]*tensor.Tensor{}
	var inputFiles []string
	for i, spec := range inputSpecs {
		name, file := "", spec
		if k := strings.IndexByte(spec, '='); k >= 0 {
			name, file = spec[:k], spec[k+1:]
		} else {
			if i >= len(names) {
				return badInputf("%s: the model has %d inputs, %d given", modelPath, len(names), len(inputSpecs))
			}
			name = names[i]
		}
		if !contains(names, name) {
			return badInputf("%s: the model has no input %q (inputs: %s)", modelPath, name, strings.Join(names, ", "))
		}
		if _, dup := feeds[name]; dup {
			return badInputf("input %q given twice", name)
		}
		t, err := readTensor(file)
		if err != nil {
			return badInput(err)
		}
		// The session checks this too, but only the command knows which
		// file the tensor came from, and that is what the user must fix.
		if err := checkFeed(m.Graph, name, t); err != nil {
			return badInputf("%s: %v", file, err)
		}
		feeds[name] = t
		inputFiles = append(inputFiles, file)
	}
	var missing []string
	for _, n := range names {
		if _, ok := feeds[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return badInputf("%s: no --input for %s", modelPath, strings.Join(missing, ", "))
	}
	outs, err := sess.Run(feeds)
	if err != nil {
		// The inputs were checked above, so what fails now is the model:
		// an attribute or input its op cannot take (bad input, exit 2).
		return badInputf("%s: %v", modelPath, err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return badInput(err)
	}
	for _, name := range sess.OutputNames() {
		t := outs[name]
		if t == nil {
			continue
		}
		p := filepath.Join(outDir, fileName(name)+".npy")
		if err := atomicfile.CheckNotInput(p, append(inputFiles, modelPath)...); err != nil {
			return badInput(err)
		}
		if err := atomicfile.Write(p, func(w io.Writer) error { return npy.Write(w, t) }); err != nil {
			return workFailed(err)
		}
		if !o.quiet {
			fmt.Fprintf(cmd.OutOrStdout(), "%s %v %v -> %s\n", name, t.DType, t.Shape, p)
		}
		if o.print {
			printTensor(cmd.OutOrStdout(), name, t)
		}
	}
	return nil
}

// checkFeed compares a tensor with the dtype and dims the model declares
// for its input.
func checkFeed(g *graph.Graph, name string, t *tensor.Tensor) error {
	for _, v := range g.Inputs {
		if v.Name != name {
			continue
		}
		if v.DType != tensor.Undefined && t.DType != v.DType {
			return fmt.Errorf("input %q: dtype %v, the model declares %v", name, t.DType, v.DType)
		}
		if v.Shape == nil {
			return nil
		}
		if len(t.Shape) != len(v.Shape) {
			return fmt.Errorf("input %q: shape %v has rank %d, the model declares %v (rank %d)", name, t.Shape, len(t.Shape), v.Shape, len(v.Shape))
		}
		for i, d := range v.Shape {
			if d.Known() && int64(t.Shape[i]) != d.Value {
				return fmt.Errorf("input %q: shape %v, the model declares %v (dim %d must be %d)", name, t.Shape, v.Shape, i, d.Value)
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fileName makes a tensor name safe as a file name.
func fileName(name string) string {
	b := []byte(name)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) == 0 || b[0] == '.' {
		return "_" + string(b)
	}
	return string(b)
}

// printTensor shows the first values of a tensor and, for a classifier-like
// output, the index of the largest value along the last axis of each row.
func printTensor(w io.Writer, name string, t *tensor.Tensor) {
	v, err := t.AsFloat64()
	if err != nil {
		fmt.Fprintf(w, "%s: %v\n", name, err)
		return
	}
	const show = 16
	head := v
	if len(head) > show {
		head = head[:show]
	}
	fmt.Fprintf(w, "%s values: %.6g", name, head)
	if len(v) > show {
		fmt.Fprintf(w, " ... (%d values)", len(v))
	}
	fmt.Fprintln(w)
	if len(t.Shape) == 0 || t.Shape[len(t.Shape)-1] == 0 {
		return
	}
	last := t.Shape[len(t.Shape)-1]
	var am []int
	for r := 0; r+last <= len(v) && len(am) < show; r += last {
		best := r
		for i := r; i < r+last; i++ {
			if v[i] > v[best] {
				best = i
			}
		}
		am = append(am, best-r)
	}
	fmt.Fprintf(w, "%s argmax: %v\n", name, am)
}
