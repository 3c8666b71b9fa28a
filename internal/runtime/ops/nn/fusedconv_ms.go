package nn

import (
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
)

// MSDomain is ONNX Runtime's contrib-op domain. `qtool fuse` writes fused
// convolutions as com.microsoft FusedConv so that ONNX Runtime runs the
// fused model too; the attributes and inputs are the same as com.qtool's.
const MSDomain = "com.microsoft"

func init() {
	register(MSDomain, "FusedConv", func(n *graph.Node, opset int64) (runtime.Kernel, error) {
		return newConv(n, true)
	})
}
