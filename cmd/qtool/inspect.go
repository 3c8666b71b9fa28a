package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/qtool/qtool/internal/model"
	"github.com/spf13/cobra"
)

func newInspectCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect MODEL [--json]",
		Short: "Describe a model: opsets, inputs and outputs, ops, parameters",
		Long: `Loads and validates MODEL and prints what is in it: IR version and producer,
opset imports, inputs and outputs with dtypes and shapes (symbolic dims by
name), a histogram of op types, and the parameter count and bytes.

Models from old opsets (e.g. opset 1 with broadcast attributes) are shown with
the opset qtool normalised them to. A model that fails validation exits 2 with
the reason.`,
		Example: `  qtool inspect mnist-8.onnx
  qtool inspect resnet18.onnx --json | jq .ops`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := model.Load(args[0])
			if err != nil {
				return badInput(err)
			}
			info := model.Inspect(m)
			if info.Path == "" {
				info.Path = args[0]
			}
			if s.v.GetBool("json") {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			printInfo(cmd.OutOrStdout(), info)
			return nil
		},
	}
	cmd.Flags().Bool("json", false, "print the description as JSON")
	return cmd
}

func printInfo(w io.Writer, info model.Info) {
	fmt.Fprintf(w, "model      %s (%s)\n", info.Path, humanBytes(info.FileSize))
	prod := strings.TrimSpace(info.ProducerName + " " + info.ProducerVersion)
	if prod == "" {
		prod = "unknown"
	}
	fmt.Fprintf(w, "producer   %s, IR version %d\n", prod, info.FileIRVersion)
	var ops []string
	for _, o := range info.Opsets {
		d := o.Domain
		if d == "" {
			d = "ai.onnx"
		}
		s := fmt.Sprintf("%s %d", d, o.Version)
		if o.Normalized != o.Version && o.Normalized != 0 {
			s += fmt.Sprintf(" (run as %d)", o.Normalized)
		}
		ops = append(ops, s)
	}
	fmt.Fprintf(w, "opsets     %s\n", strings.Join(ops, ", "))
	printValues := func(title string, vs []model.ValueInfo) {
		fmt.Fprintf(w, "%s\n", title)
		for _, v := range vs {
			t := v.DType
			if v.Type != "" {
				t = v.Type
			}
			fmt.Fprintf(w, "  %-28s %-8s %s\n", v.Name, t, v.ShapeText)
		}
	}
	printValues("inputs", info.Inputs)
	printValues("outputs", info.Outputs)
	fmt.Fprintf(w, "parameters %d in %d initializers (%s)\n", info.Parameters, info.Initializers, humanBytes(info.ParameterBytes))
	if len(info.ExternalData) > 0 {
		fmt.Fprintf(w, "external   %s\n", strings.Join(info.ExternalData, ", "))
	}
	fmt.Fprintf(w, "nodes      %d\n", info.Nodes)
	type kv struct {
		op string
		n  int
	}
	var hist []kv
	for op, n := range info.Ops {
		hist = append(hist, kv{op, n})
	}
	sort.Slice(hist, func(i, j int) bool {
		if hist[i].n != hist[j].n {
			return hist[i].n > hist[j].n
		}
		return hist[i].op < hist[j].op
	})
	for _, h := range hist {
		fmt.Fprintf(w, "  %-28s %d\n", h.op, h.n)
	}
	for _, m := range info.Metadata {
		fmt.Fprintf(w, "metadata   %s = %s\n", m.Key, m.Value)
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
