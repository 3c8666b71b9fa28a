package convert

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/calibrate"
	"github.com/qtool/qtool/internal/fuse"
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/ortpeer"
	_ "github.com/qtool/qtool/internal/runtime/ops/all"
	"github.com/qtool/qtool/internal/tensor"
)

// shared finds ../shared from the test's directory.
func shared(t testing.TB, rel string) string {
	t.Helper()
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		p := filepath.Join(d, "shared", rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		p = filepath.Join(d, "..", "shared", rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skipf("shared/%s not found", rel)
	return ""
}

func repoRoot(t testing.TB) string {
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	t.Fatal("no go.mod above the test")
	return ""
}

// readIDX reads a gzipped IDX file (MNIST).
func readIDX(t testing.TB, path string) (dims []int, data []byte) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	nd := int(b[3])
	for i := 0; i < nd; i++ {
		dims = append(dims, int(binary.BigEndian.Uint32(b[4+4*i:])))
	}
	return dims, b[4+4*nd:]
}

// mnist returns the t10k digits as [N,1,28,28] float32 in 0..255 (how
// mnist-8 was trained) and their labels.
func mnist(t testing.TB) (*tensor.Tensor, []int) {
	dims, px := readIDX(t, shared(t, "data/mnist/t10k-images-idx3-ubyte.gz"))
	_, lb := readIDX(t, shared(t, "data/mnist/t10k-labels-idx1-ubyte.gz"))
	n := dims[0]
	x := make([]float32, len(px))
	for i, p := range px {
		x[i] = float32(p)
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = int(lb[i])
	}
	return tensor.FromFloat32([]int{n, 1, 28, 28}, x), labels
}

func rows(x *tensor.Tensor, lo, hi int) *tensor.Tensor {
	per := x.Len() / x.Shape[0]
	shape := append([]int{hi - lo}, x.Shape[1:]...)
	return tensor.FromFloat32(shape, x.F32()[lo*per:hi*per])
}

func writeNpy(t testing.TB, path string, x *tensor.Tensor) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := npy.Write(f, x); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// calibrateNpy fuses g (portable) and calibrates it on the samples of an
// .npy file with the config's activation observer.
func calibrateGraph(t testing.TB, g *graph.Graph, data string, cfg Config, pp *calibrate.Preprocess, offset, limit int) *calibrate.Table {
	t.Helper()
	ds, err := calibrate.Open([]calibrate.DataSpec{{Path: data}}, calibrate.InputSpecs(g), calibrate.Options{Offset: offset, Limit: limit, Preprocess: pp})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	tab, err := calibrate.Calibrate(context.Background(), g, calibrate.ModelInfo{Path: "m.onnx", SHA256: strings.Repeat("0", 64)}, ds, CalibrationConfig(cfg, g), "", calibrate.RunOptions{Threads: 2}, calibrate.DatasetInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func loadFused(t testing.TB, path string) *model.Model {
	t.Helper()
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fuse.Fuse(m.Graph, fuse.Options{Portable: true}); err != nil {
		t.Fatal(err)
	}
	return m
}

// needORT skips t when ONNX Runtime (the peer these tests compare with)
// is not installed.
func needORT(t testing.TB) {
	ortpeer.Need(t)
}

// runORT runs a model file in ONNX Runtime with every optimization and
// reads its outputs.
func runORT(t testing.TB, path string, in map[string]*tensor.Tensor, outNames []string) (map[string]*tensor.Tensor, error) {
	return ortpeer.Run(t, path, in, outNames, "all")
}

// runORTLevel runs with a graph optimization level: "all" is what users
// get (QDQ fused into integer kernels), "disabled" runs a QDQ graph as
// written (float ops between Q/DQ), which is what our runtime does.
func runORTLevel(t testing.TB, path string, in map[string]*tensor.Tensor, outNames []string, level string) (map[string]*tensor.Tensor, error) {
	return ortpeer.Run(t, path, in, outNames, level)
}

// lsbAgreement is the fraction of elements where a and b differ by at most
// one step of scale (plus float noise).
func lsbAgreement(a, b *tensor.Tensor, scale float32) (float64, float64) {
	x, y := a.F32(), b.F32()
	ok, worst := 0, 0.0
	for i := range x {
		d := math.Abs(float64(x[i] - y[i]))
		tol := float64(scale)*1.0001 + 1e-5*math.Abs(float64(x[i]))
		if d <= tol {
			ok++
		}
		worst = math.Max(worst, d/float64(scale))
	}
	return float64(ok) / float64(len(x)), worst
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}
