package quant

import (
	"fmt"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// msDomain is ONNX Runtime's contrib-op domain.
const msDomain = "com.microsoft"

// ONNX Runtime's com.microsoft QuantizeLinear/DequantizeLinear are the
// opset-13 ops (x, scale, optional zero point; attribute axis) with 16-bit
// integer types at any ai.onnx opset: its quantizer writes them for
// QUInt16/QInt16 activations when the model's opset is below 21, and
// qtool convert does the same. They share the ai.onnx kernels; the
// opset-19+ attributes (block_size, output_dtype, saturate) do not exist
// in the contrib schema and are refused rather than silently honoured.
func init() {
	for _, dt := range []tensor.DType{tensor.Float32, tensor.Float16} {
		runtime.Register(msDomain, "QuantizeLinear", dt, contrib(newQuantize))
	}
	for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8, tensor.Int32, tensor.Uint16, tensor.Int16} {
		runtime.Register(msDomain, "DequantizeLinear", dt, contrib(newDequantize))
	}
}

func contrib(f runtime.Factory) runtime.Factory {
	return func(n *graph.Node, opset int64) (runtime.Kernel, error) {
		for _, a := range n.Attrs {
			if a.Name != "axis" {
				return nil, fmt.Errorf("%v: com.microsoft %s has no attribute %q", n, n.OpType, a.Name)
			}
		}
		// The contrib schema is opset 13's; give the kernel that opset.
		return f(n, 13)
	}
}
