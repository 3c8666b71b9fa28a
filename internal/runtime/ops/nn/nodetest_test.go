package nn_test

import (
	"path/filepath"
	"testing"

	"github.com/qtool/qtool/internal/runtime/nodetest"
	_ "github.com/qtool/qtool/internal/runtime/ops/all"
)

// nnPatterns are the ONNX backend node tests of this package's ops, in
// ../shared/onnx-node and Debian's libonnx-testdata (node/, and the
// pytorch-converted/ and pytorch-operator/ exports of conv, pool, norm,
// linear and pad modules).
var nnPatterns = []string{
	"test_conv_*", "test_basic_conv_*", "test_convtranspose*", "test_averagepool*", "test_maxpool*",
	"test_globalaveragepool*", "test_globalmaxpool*", "test_lppool*", "test_maxunpool*",
	"test_batchnorm*", "test_instancenorm*", "test_layer_normalization*", "test_group_normalization*",
	"test_gemm*", "test_matmul_*", "test_*_pad", "test_pad*", "test_resize*", "test_upsample*",
	"test_lstm*", "test_gru*", "test_rnn*", "test_simple_rnn*", "test_gridsample*",
}

var torchPatterns = []string{
	"test_Conv*", "test_ConvTranspose*", "test_*Pool*", "test_BatchNorm*", "test_Linear*", "test_*Pad2d",
	"test_operator_conv*", "test_operator_maxpool", "test_operator_mm", "test_operator_addmm", "test_operator_pad",
}

// TestNodeTests runs every node test of this package's ops through the
// Session (with all op packages registered), except those listed in
// ops/all/unsupported.txt.
func TestNodeTests(t *testing.T) {
	skip, err := nodetest.ReadList("../all/unsupported.txt")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var dirs []string
	for _, p := range nnPatterns {
		dirs = append(dirs, nodetest.Dirs(p)...)
	}
	for _, p := range torchPatterns {
		for _, sub := range []string{"pytorch-converted", "pytorch-operator"} {
			dirs = append(dirs, nodetest.DirsIn(filepath.Join(filepath.Dir(nodetest.LibONNXNodeDir), sub), p)...)
		}
	}
	if len(dirs) == 0 {
		t.Skip("no node tests found")
	}
	for _, d := range dirs {
		if seen[d] {
			continue
		}
		seen[d] = true
		name := filepath.Base(d)
		if _, ok := skip[name]; ok {
			continue
		}
		t.Run(filepath.Base(filepath.Dir(d))+"/"+name, func(t *testing.T) {
			nodetest.Run(t, d)
		})
	}
	t.Logf("%d node-test folders run", len(seen))
}
