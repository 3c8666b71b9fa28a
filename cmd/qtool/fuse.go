package main

import (
	"fmt"

	"github.com/qtool/qtool/internal/atomicfile"
	"github.com/qtool/qtool/internal/fuse"
	"github.com/qtool/qtool/internal/model"
	"github.com/spf13/cobra"
)

func newFuseCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fuse MODEL -o OUT.onnx",
		Short: "Fold BatchNorm into convolutions and fuse activations",
		Long: `Rewrites a float ONNX model the way PyTorch's fused modules do, with unchanged
numerics (within float rounding):

  Conv/ConvTranspose/Gemm/MatMul + BatchNormalization   BN folded into weights and bias
  Conv + Mul/Add by a per-channel constant              folded into weights and bias
  MatMul + Add (2-D, constant weight and bias)          Gemm
  Conv (+ residual Add) + Relu/Clip/LeakyRelu          com.microsoft FusedConv
  Identity, inference Dropout                          removed
  shape arithmetic on constants and known shapes      folded into initializers

FusedConv is the contrib op that ONNX Runtime and qtool both run; --portable
writes standard ai.onnx ops only (activations stay separate nodes).
A rewrite is skipped when it is not safe (a value read by a second node, a
weight shared by two nodes, a BatchNorm parameter that is not constant);
--verbose says where and why. The output is written atomically and never
over the input.`,
		Example: `  qtool fuse resnet18.onnx -o resnet18.fused.onnx
  qtool fuse model.onnx -o model.fused.onnx --portable --verbose`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := s.v.GetString("output")
			if out == "" {
				return badInputf("fuse needs -o OUT.onnx")
			}
			if err := atomicfile.CheckNotInput(out, args[0]); err != nil {
				return badInput(err)
			}
			m, err := model.Load(args[0])
			if err != nil {
				return badInput(err)
			}
			o := fuse.Options{Portable: s.v.GetBool("portable")}
			if s.v.GetBool("verbose") {
				o.Log = func(msg string) { fmt.Fprintln(cmd.ErrOrStderr(), msg) }
			}
			before := len(m.Graph.Nodes)
			rep, err := fuse.Fuse(m.Graph, o)
			if err != nil {
				return workFailed(err)
			}
			if err := model.Save(m, out); err != nil {
				return workFailed(err)
			}
			if !s.quiet() {
				w := cmd.OutOrStdout()
				for _, p := range rep.Patterns() {
					fmt.Fprintf(w, "  %-32s %d\n", p, rep.Counts[p])
				}
				fmt.Fprintf(w, "%s: %d nodes -> %d nodes, written to %s\n", args[0], before, len(m.Graph.Nodes), out)
			}
			return nil
		},
	}
	cmd.Flags().StringP("output", "o", "", "output ONNX file")
	cmd.Flags().Bool("portable", false, "write standard ai.onnx ops only (no com.microsoft FusedConv)")
	cmd.Flags().BoolP("verbose", "v", false, "say which rewrites were skipped and why (on stderr)")
	return cmd
}
