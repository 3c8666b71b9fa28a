package all

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/runtime/nodetest"
)

// floatOps are the op types whose Debian libonnx-testdata node tests this
// package runs: ops/basic's and ops/nn's. A test is in scope when every
// node of its model (subgraphs included) is one of these.
var floatOps = strings.Fields(`
	Relu Clip LeakyRelu Elu Selu Celu ThresholdedRelu HardSigmoid HardSwish Sigmoid Tanh Softplus Softsign Mish
	Softmax LogSoftmax Hardmax
	Add Sub Mul Div Pow Sqrt Neg Abs Exp Log Erf Floor Ceil Round Reciprocal Sign
	Sin Cos Tan Asin Acos Atan Sinh Cosh Asinh Acosh Atanh
	Min Max Sum Mean PRelu
	Equal Less Greater LessOrEqual GreaterOrEqual Where Not And Or Xor
	Concat Split Slice Gather Flatten Reshape Squeeze Unsqueeze Transpose Expand Tile Shape Size
	Constant ConstantOfShape Cast CastLike Identity Dropout Range If Loop Scan
	ReduceMean ReduceMax ReduceMin ReduceSum ReduceProd ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceSumSquare
	ArgMax ArgMin TopK
	DepthToSpace SpaceToDepth GatherElements ScatterElements Scatter GatherND ScatterND Trilu NonZero OneHot
	CumSum Mod IsNaN IsInf Shrink LRN MeanVarianceNormalization EyeLike Compress BitShift NonMaxSuppression Einsum
	Conv ConvTranspose MaxPool AveragePool GlobalAveragePool GlobalMaxPool LpPool
	BatchNormalization InstanceNormalization LayerNormalization GroupNormalization
	Gemm MatMul Pad Resize Upsample LSTM GRU RNN
`)

func readList(t *testing.T) map[string]string {
	list, err := nodetest.ReadList("unsupported.txt")
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// runSuite runs each folder as a subtest named after it: it passes, or it
// is listed in unsupported.txt (then it is skipped with the listed reason,
// and fails if it passes after all), or it fails.
func runSuite(t *testing.T, dirs []string, list map[string]string) {
	pass, listed, fail := 0, 0, 0
	for i, d := range dirs {
		name := filepath.Base(d)
		threads := 1 + i%3
		ran := false
		ok := t.Run(name, func(t *testing.T) {
			ran = true
			err := nodetest.Check(d, threads)
			reason, isListed := list[name]
			switch {
			case err == nil && isListed:
				t.Errorf("passes but unsupported.txt lists it (%s): remove the line", reason)
			case err == nil:
			case isListed:
				t.Skipf("unsupported: %s (%v)", reason, err)
			default:
				t.Errorf("%s (threads=%d): %v", d, threads, err)
			}
		})
		switch {
		case !ran: // filtered out by -run
		case !ok:
			fail++
		case list[name] != "":
			listed++
		default:
			pass++
		}
	}
	t.Logf("%d folders run: %d pass, %d listed unsupported, %d fail", pass+listed+fail, pass, listed, fail)
}

// TestONNXNodeTests runs every folder of shared/onnx-node.
func TestONNXNodeTests(t *testing.T) {
	root := nodetest.SharedDir()
	if root == "" {
		t.Skip("shared/onnx-node not found above the working directory")
	}
	dirs := nodetest.DirsIn(root, "test_*")
	if len(dirs) < 200 {
		t.Fatalf("%s holds only %d node tests", root, len(dirs))
	}
	runSuite(t, dirs, readList(t))
}

// TestLibONNXNodeTests runs the libonnx-testdata node tests whose ops are
// all float ops of ops/basic or ops/nn (apt-get install libonnx-testdata).
func TestLibONNXNodeTests(t *testing.T) {
	runSuite(t, scopedDirs(t, nodetest.LibONNXNodeDir), readList(t))
}

// TestLibONNXPyTorchTests runs libonnx-testdata's PyTorch exports (modules
// in pytorch-converted, operators in pytorch-operator) that use float ops.
func TestLibONNXPyTorchTests(t *testing.T) {
	list := readList(t)
	for _, sub := range []string{"pytorch-converted", "pytorch-operator"} {
		t.Run(sub, func(t *testing.T) {
			runSuite(t, scopedDirs(t, filepath.Join(filepath.Dir(nodetest.LibONNXNodeDir), sub)), list)
		})
	}
}

// scopedDirs lists the test folders under root whose models use only
// floatOps (plus those whose model does not load for a dtype reason: the
// list decides about them).
func scopedDirs(t *testing.T, root string) []string {
	all := nodetest.DirsIn(root, "test_*")
	if len(all) == 0 {
		t.Skipf("%s not installed (apt-get install libonnx-testdata)", root)
	}
	scope := map[string]bool{}
	for _, op := range floatOps {
		scope[op] = true
	}
	list := readList(t)
	var dirs []string
	outOps := map[string]bool{}
	for _, d := range all {
		m, err := model.Load(filepath.Join(d, "model.onnx"))
		if err != nil {
			if _, ok := list[filepath.Base(d)]; ok || strings.Contains(err.Error(), "dtype") || strings.Contains(err.Error(), "data type") {
				dirs = append(dirs, d)
			}
			continue
		}
		if bad := opsOutside(m.Graph, scope); bad != "" {
			outOps[bad] = true
			continue
		}
		dirs = append(dirs, d)
	}
	var skipped []string
	for op := range outOps {
		skipped = append(skipped, op)
	}
	sort.Strings(skipped)
	t.Logf("%d of %d tests in %s use only float ops; the others use %s", len(dirs), len(all), root, strings.Join(skipped, " "))
	return dirs
}

// opsOutside returns an op type of g (or its subgraphs) not in scope, or "".
func opsOutside(g *graph.Graph, scope map[string]bool) string {
	for _, n := range g.Nodes {
		if !graph.IsDefaultDomain(n.Domain) || !scope[n.OpType] {
			return n.OpType
		}
		for _, sg := range n.Subgraphs() {
			if op := opsOutside(sg, scope); op != "" {
				return op
			}
		}
	}
	return ""
}
