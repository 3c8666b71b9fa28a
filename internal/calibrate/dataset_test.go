package calibrate

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/tensor"
)

func spec(name string, dt tensor.DType, dims ...int64) InputSpec {
	s := make(graph.Shape, len(dims))
	for i, d := range dims {
		if d < 0 {
			s[i] = graph.Dim{Value: -1, Param: "N"}
		} else {
			s[i] = graph.Dim{Value: d}
		}
	}
	return InputSpec{Name: name, DType: dt, Shape: s}
}

func seq(n int, f func(i int) float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = f(i)
	}
	return x
}

func collect(t *testing.T, d *Dataset) []*Batch {
	t.Helper()
	var out []*Batch
	it := d.Iter()
	for {
		b, err := it.Next(context.Background())
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
}

// The permutation is pinned: the same seed must pick the same samples on
// every machine and Go version, so a change here breaks users' tables.
func TestPermutationPinned(t *testing.T) {
	got := Permutation(10, 10, 42)
	again := Permutation(10, 10, 42)
	if !reflect.DeepEqual(got, again) {
		t.Fatal("not deterministic")
	}
	seen := map[int]bool{}
	for _, v := range got {
		if v < 0 || v >= 10 || seen[v] {
			t.Fatalf("not a permutation: %v", got)
		}
		seen[v] = true
	}
	// Computed independently in Python (SplitMix64, whose generator matches
	// Vigna's reference outputs 6457827717110365317, ... for seed 1234567,
	// rejection sampling, Fisher-Yates).
	if want := []int{3, 2, 4, 5, 8, 7, 0, 9, 6, 1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Permutation(10, 10, 42) = %v, pinned %v", got, want)
	}
	// A prefix of the permutation is the same as the partial draw.
	if p := Permutation(10, 4, 42); !reflect.DeepEqual(p, got[:4]) {
		t.Fatalf("partial %v, full prefix %v", p, got[:4])
	}
	if reflect.DeepEqual(Permutation(10, 10, 43), got) {
		t.Fatal("seed has no effect")
	}
	// Huge n with small k stays small.
	if p := Permutation(1<<40, 3, 1); len(p) != 3 {
		t.Fatal(p)
	}
	// Uniformity: each of 4 values first about equally often.
	var counts [4]int
	for s := uint64(0); s < 4000; s++ {
		counts[Permutation(4, 1, s)[0]]++
	}
	for _, c := range counts {
		if c < 850 || c > 1150 {
			t.Fatalf("first-element counts %v far from uniform", counts)
		}
	}
}

func TestNPYBatchesShuffleLimit(t *testing.T) {
	data := writeNPY(t, tensor.FromFloat32([]int{10, 2, 3}, seq(60, func(i int) float32 { return float32(i) })))
	in := []InputSpec{spec("x", tensor.Float32, -1, 2, 3)}
	d, err := Open([]DataSpec{{Path: data}}, in, Options{Batch: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	bs := collect(t, d)
	if len(bs) != 3 || len(bs[2].Samples) != 2 {
		t.Fatalf("%d batches", len(bs))
	}
	x := bs[1].Inputs["x"]
	if !reflect.DeepEqual(x.Shape, []int{4, 2, 3}) || x.F32()[0] != 24 {
		t.Fatalf("batch 1: %v %v", x.Shape, x.F32()[:3])
	}
	// An offset past the data is the data file's problem: name it.
	if _, err := Open([]DataSpec{{Path: data}}, in, Options{Offset: 10}); err == nil || !strings.HasPrefix(err.Error(), data+": offset 10") {
		t.Errorf("offset past the data: %v", err)
	}
	d2, err := Open([]DataSpec{{Path: data}}, in, Options{Batch: 3, Limit: 5, Shuffle: true, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	var got []int
	for _, b := range collect(t, d2) {
		got = append(got, b.Samples...)
		for k, s := range b.Samples {
			if v := b.Inputs["x"].F32()[k*6]; v != float32(s*6) {
				t.Fatalf("sample %d holds %v", s, v)
			}
		}
	}
	if !reflect.DeepEqual(got, Permutation(10, 5, 42)) {
		t.Fatalf("shuffled samples %v", got)
	}
}

// A model with a fixed batch dim runs exactly that many; leftovers are
// dropped and counted, and a contradicting --batch gives way with a note.
func TestFixedBatch(t *testing.T) {
	data := writeNPY(t, tensor.FromFloat32([]int{5, 3}, seq(15, func(i int) float32 { return 1 })))
	in := []InputSpec{spec("x", tensor.Float32, 2, 3)}
	d, err := Open([]DataSpec{{Path: data}}, in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	it := d.Iter()
	n := 0
	for {
		_, err := it.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2 || it.Dropped != 1 {
		t.Fatalf("%d batches, %d dropped", n, it.Dropped)
	}
	d4, err := Open([]DataSpec{{Path: data}}, in, Options{Batch: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer d4.Close()
	if d4.BatchSize() != 2 || !strings.Contains(d4.Note, "fixed at 2") {
		t.Fatalf("batch 4 on a fixed batch of 2: batch %d, note %q", d4.BatchSize(), d4.Note)
	}
}

// Mismatched samples are refused naming the file, the sample and the
// mismatch; NaN/Inf are an error naming input and sample, or skipped.
func TestSampleChecks(t *testing.T) {
	x := seq(12, func(i int) float32 { return float32(i) })
	x[7] = float32(math.NaN())
	data := writeNPY(t, tensor.FromFloat32([]int{4, 3}, x))
	for _, c := range []struct {
		in   InputSpec
		want []string
	}{
		{spec("x", tensor.Float32, -1, 4), []string{data, "sample 0", "dim 1 is 3, want 4"}},
		{spec("x", tensor.Float32, -1, 3, 1), []string{data, "sample 0", "does not fit"}},
		{spec("x", tensor.Float64, -1, 3), []string{data, "sample 0", "float32", "float64", "astype"}},
		{spec("x", tensor.Float32, -1, 3), []string{data, "sample 2", `input "x"`, "NaN or Inf"}},
	} {
		d, err := Open([]DataSpec{{Path: data}}, []InputSpec{c.in}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		it := d.Iter()
		var last error
		for last == nil {
			_, last = it.Next(context.Background())
		}
		d.Close()
		for _, w := range c.want {
			if last == io.EOF || !strings.Contains(last.Error(), w) {
				t.Errorf("%v: error %v, want it to mention %q", c.in.Shape, last, w)
			}
		}
	}
	d, err := Open([]DataSpec{{Path: data}}, []InputSpec{spec("x", tensor.Float32, -1, 3)}, Options{SkipNonFinite: true, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	it := d.Iter()
	var got []int
	for {
		b, err := it.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b.Samples...)
	}
	if !reflect.DeepEqual(got, []int{0, 1, 3}) || it.Skipped != 1 {
		t.Fatalf("samples %v, skipped %d", got, it.Skipped)
	}
}

func writeNPZ(t *testing.T, deflate bool, names []string, arrays map[string]*tensor.Tensor) string {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, n := range names {
		m := zip.Store
		if deflate {
			m = zip.Deflate
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n + ".npy", Method: m})
		if err != nil {
			t.Fatal(err)
		}
		if err := npy.Write(w, arrays[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "d.npz")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// An .npz feeds several inputs by array name, stored or deflated alike.
func TestNPZMultiInput(t *testing.T) {
	arrays := map[string]*tensor.Tensor{
		"a": tensor.FromFloat32([]int{3, 2}, seq(6, func(i int) float32 { return float32(i) })),
		"b": tensor.FromInt64([]int{3, 1}, []int64{10, 11, 12}),
	}
	in := []InputSpec{spec("a", tensor.Float32, -1, 2), spec("b", tensor.Int64, -1, 1)}
	for _, deflate := range []bool{false, true} {
		p := writeNPZ(t, deflate, []string{"a", "b"}, arrays)
		d, err := Open([]DataSpec{{Path: p}}, in, Options{Batch: 2})
		if err != nil {
			t.Fatal(err)
		}
		bs := collect(t, d)
		d.Close()
		if len(bs) != 2 {
			t.Fatalf("%d batches", len(bs))
		}
		if got := bs[1].Inputs["b"].I64(); !reflect.DeepEqual(got, []int64{12}) {
			t.Fatalf("deflate %v: b = %v", deflate, got)
		}
		if got := bs[0].Inputs["a"].F32(); !reflect.DeepEqual(got, []float32{0, 1, 2, 3}) {
			t.Fatalf("deflate %v: a = %v", deflate, got)
		}
	}
	// An array name that is not an input is an error naming both.
	p := writeNPZ(t, false, []string{"a", "c"}, map[string]*tensor.Tensor{"a": arrays["a"], "c": arrays["b"]})
	if _, err := Open([]DataSpec{{Path: p}}, in, Options{}); err == nil || !strings.Contains(err.Error(), `"c"`) {
		t.Fatalf("array c: %v", err)
	}
	// Several inputs from separate files, by name; one missing is an error.
	pa := writeNPY(t, arrays["a"])
	if _, err := Open([]DataSpec{{Input: "a", Path: pa}}, in, Options{}); err == nil || !strings.Contains(err.Error(), "no data for model input(s) b") {
		t.Fatalf("missing b: %v", err)
	}
	if _, err := Open([]DataSpec{{Path: pa}}, in, Options{}); err == nil || !strings.Contains(err.Error(), "say which one") {
		t.Fatalf("unnamed data for a two-input model: %v", err)
	}
}

// A folder of .npy files, one sample each (with or without a leading
// batch dim of 1), in name order.
func TestNPYFolder(t *testing.T) {
	dir := t.TempDir()
	for i, name := range []string{"b.npy", "a.npy", "c.npy"} {
		shape := []int{2}
		if i == 2 {
			shape = []int{1, 2}
		}
		var buf bytes.Buffer
		if err := npy.Write(&buf, tensor.FromFloat32(shape, []float32{float32(i), float32(i)})); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := Open([]DataSpec{{Path: dir}}, []InputSpec{spec("x", tensor.Float32, -1, 2)}, Options{Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	bs := collect(t, d)
	if got := bs[0].Inputs["x"].F32(); !reflect.DeepEqual(got, []float32{1, 1, 0, 0, 2, 2}) {
		t.Fatalf("got %v (a.npy, b.npy, c.npy order)", got)
	}
}

func pngBytes(t *testing.T, w, h int, f func(x, y int) color.NRGBA) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, f(x, y))
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Image folders and tars: classes from sorted subfolders, layout from the
// model, scaling, mean/std, BGR, center crop, and the same samples from a
// folder, a tar of it and a gzipped tar.
func TestImages(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"data/dog/1.png": pngBytes(t, 4, 6, func(x, y int) color.NRGBA { return color.NRGBA{R: uint8(10 * x), G: uint8(10 * y), B: 200, A: 255} }),
		"data/cat/2.png": pngBytes(t, 4, 6, func(x, y int) color.NRGBA { return color.NRGBA{R: 255, G: 0, B: 51, A: 255} }),
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, name := range []string{"data/cat/2.png", "data/dog/1.png"} {
		p := filepath.Join(dir, "folder", filepath.FromSlash(strings.TrimPrefix(name, "data/")))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg})
		tw.Write(files[name])
	}
	tw.Close()
	tarPath := filepath.Join(dir, "imgs.tar")
	os.WriteFile(tarPath, tb.Bytes(), 0o644)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tb.Bytes())
	zw.Close()
	tgzPath := filepath.Join(dir, "imgs.tar.gz")
	os.WriteFile(tgzPath, gz.Bytes(), 0o644)

	pp := &Preprocess{Crop: Dims{4, 2}, Mean: []float64{0.5}, Std: []float64{0.5}}
	nchw := []InputSpec{spec("img", tensor.Float32, -1, 3, 4, 2)}
	var ref []*Batch
	for _, src := range []string{filepath.Join(dir, "folder"), tarPath, tgzPath} {
		d, err := Open([]DataSpec{{Path: src}}, nchw, Options{Batch: 2, Preprocess: pp})
		if err != nil {
			t.Fatal(err)
		}
		bs := collect(t, d)
		if !reflect.DeepEqual(d.Classes(), []string{"cat", "dog"}) || !reflect.DeepEqual(bs[0].Labels, []int{0, 1}) {
			t.Fatalf("%s: classes %v labels %v", src, d.Classes(), bs[0].Labels)
		}
		d.Close()
		x := bs[0].Inputs["img"]
		if !reflect.DeepEqual(x.Shape, []int{2, 3, 4, 2}) {
			t.Fatalf("shape %v", x.Shape)
		}
		// cat: R=255 -> (1-0.5)/0.5 = 1; B=51 -> (0.2-0.5)/0.5 = -0.6.
		if v := x.F32()[0]; v != 1 {
			t.Fatalf("cat R = %v", v)
		}
		if v := x.F32()[2*8]; math.Abs(float64(v)+0.6) > 1e-6 {
			t.Fatalf("cat B = %v", v)
		}
		// dog: crop 4x2 from 6x4 starts at row 1, column 1: R = 10*x/255.
		dog := x.F32()[24:]
		if want := float32((10.0/255 - 0.5) / 0.5); math.Abs(float64(dog[0]-want)) > 1e-6 {
			t.Fatalf("dog R[0,0] = %v, want %v", dog[0], want)
		}
		if want := float32((10.0/255 - 0.5) / 0.5); math.Abs(float64(dog[8]-want)) > 1e-6 { // G at row 0 = 10*1
			t.Fatalf("dog G[0,0] = %v, want %v", dog[8], want)
		}
		if ref != nil && !reflect.DeepEqual(ref[0].Inputs, bs[0].Inputs) {
			t.Fatalf("%s: not the samples of the folder", src)
		}
		ref = bs
	}
	// NHWC, BGR, 0..255.
	nhwc := []InputSpec{spec("img", tensor.Float32, -1, 6, 4, 3)}
	d, err := Open([]DataSpec{{Path: tarPath}}, nhwc, Options{Preprocess: &Preprocess{Color: "bgr", Range: "0..255"}})
	if err != nil {
		t.Fatal(err)
	}
	bs := collect(t, d)
	d.Close()
	if got := bs[0].Inputs["img"].F32()[:3]; !reflect.DeepEqual(got, []float32{51, 0, 255}) {
		t.Fatalf("cat BGR pixel %v", got)
	}
	// A size mismatch names the image and says what to set.
	d, err = Open([]DataSpec{{Path: tarPath}}, []InputSpec{spec("img", tensor.Float32, -1, 3, 5, 4)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Iter().Next(context.Background())
	d.Close()
	if err == nil || !strings.Contains(err.Error(), "imgs.tar:data/cat/2.png") || !strings.Contains(err.Error(), "resize/crop") {
		t.Fatalf("size mismatch: %v", err)
	}
	// Resize of the shorter side keeps the aspect ratio.
	d, err = Open([]DataSpec{{Path: tarPath}}, []InputSpec{spec("img", tensor.Float32, -1, 3, 3, 2)}, Options{Preprocess: &Preprocess{Resize: Dims{2}}})
	if err != nil {
		t.Fatal(err)
	}
	bs = collect(t, d)
	d.Close()
	if got := bs[0].Inputs["img"].F32()[:6]; got[0] != 1 {
		t.Fatalf("resized constant image: %v", got)
	}
}

// Bad archives and images are errors, never panics.
func TestBadImageData(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "imgs"), 0o755)
	os.WriteFile(filepath.Join(dir, "imgs", "x.jpg"), []byte("not a jpeg"), 0o644)
	d, err := Open([]DataSpec{{Path: filepath.Join(dir, "imgs")}}, []InputSpec{spec("img", tensor.Float32, -1, 3, 4, 4)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Iter().Next(context.Background())
	d.Close()
	if err == nil || !strings.Contains(err.Error(), "x.jpg") {
		t.Fatalf("bad jpeg: %v", err)
	}
	bad := filepath.Join(dir, "bad.tar")
	os.WriteFile(bad, bytes.Repeat([]byte{0x41}, 1000), 0o644)
	if _, err := Open([]DataSpec{{Path: bad}}, []InputSpec{spec("img", tensor.Float32, -1, 3, 4, 4)}, Options{}); err == nil {
		t.Fatal("garbage tar: no error")
	}
	badGz := filepath.Join(dir, "bad.tgz")
	os.WriteFile(badGz, []byte("\x1f\x8b\x08\x00garbage"), 0o644)
	if _, err := Open([]DataSpec{{Path: badGz}}, []InputSpec{spec("img", tensor.Float32, -1, 3, 4, 4)}, Options{}); err == nil || !strings.Contains(err.Error(), "bad.tgz") {
		t.Fatalf("garbage tgz: %v", err)
	}
	if _, err := Open([]DataSpec{{Path: filepath.Join(dir, "x.tgz")}}, []InputSpec{spec("img", tensor.Float32, -1, 3, 4, 4)}, Options{}); err == nil {
		t.Fatal("missing file: no error")
	}
}

// The image recipe reproduces torchvision (PIL bilinear resize, center
// crop, ToTensor, Normalize) on a PNG: goldens from
// testdata/gen_preprocess.py. PIL's resize is matched bit for bit, so the
// only differences allowed are float32 rounding of the normalization.
func TestPreprocessMatchesTorchvision(t *testing.T) {
	dir := filepath.Join("testdata", "preprocess")
	mean, std := []float64{0.485, 0.456, 0.406}, []float64{0.229, 0.224, 0.225}
	for _, c := range []struct {
		golden string
		pp     Preprocess
	}{
		{"shorter16_crop12x14_norm", Preprocess{Resize: Dims{16}, Crop: Dims{12, 14}, Mean: mean, Std: std}},
		{"exact20x11", Preprocess{Resize: Dims{20, 11}}},
		{"up40_crop40", Preprocess{Resize: Dims{40}, Crop: Dims{40}}},
		{"gray_shorter10", Preprocess{Resize: Dims{10}, Color: "gray"}},
	} {
		want, err := npy.ReadFile(filepath.Join(dir, c.golden+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		sh := want.Shape
		in := spec("img", tensor.Float32, -1, int64(sh[0]), int64(sh[1]), int64(sh[2]))
		folder := t.TempDir()
		png, _ := os.ReadFile(filepath.Join(dir, "img.png"))
		os.WriteFile(filepath.Join(folder, "img.png"), png, 0o644)
		pp := c.pp
		d, err := Open([]DataSpec{{Path: folder}}, []InputSpec{in}, Options{Preprocess: &pp})
		if err != nil {
			t.Fatalf("%s: %v", c.golden, err)
		}
		bs := collect(t, d)
		d.Close()
		got := bs[0].Inputs["img"].F32()
		worst := 0.0
		for i, w := range want.F32() {
			worst = max(worst, math.Abs(float64(got[i]-w)))
		}
		if worst > 1e-6 {
			t.Errorf("%s: differs from torchvision by up to %g", c.golden, worst)
		}
	}
}

// A .npy far larger than memory is read a sample at a time: a sparse 4 GB
// file whose header promises a million samples costs only the samples used.
func TestNPYStreamsLargeFile(t *testing.T) {
	var hdr bytes.Buffer
	if err := npy.Write(&hdr, tensor.FromFloat32([]int{0, 1000}, nil)); err != nil {
		t.Fatal(err)
	}
	h := strings.Replace(hdr.String(), "(0, 1000)", "(1000000, 1000)", 1)
	// Keep the data 64-byte aligned as NumPy does: the header grew by 6.
	h = strings.Replace(h, "      \n", "\n", 1)
	p := filepath.Join(t.TempDir(), "big.npy")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(h)
	if err := f.Truncate(int64(len(h)) + 1000000*1000*4); err != nil {
		t.Skip("no sparse files here:", err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d, err := Open([]DataSpec{{Path: p}}, []InputSpec{spec("x", tensor.Float32, -1, 1000)}, Options{Limit: 8, Shuffle: true, Seed: 1, Batch: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	bs := collect(t, d)
	runtime.ReadMemStats(&after)
	if len(bs) != 2 || d.Total != 1000000 {
		t.Fatalf("%d batches of %d samples", len(bs), d.Total)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Fatalf("allocated %d bytes for 8 samples of 4 KB", alloc)
	}
}

// JPEGs decode as PIL (libjpeg-turbo) decodes them: libjpeg's fancy chroma
// upsampling and colour tables leave only the inverse DCTs' rounding
// differences (Go's own chroma replication is up to 78 levels off on this
// noisy image, 11 on CIFAR-10's JPEGs).
func TestJPEGMatchesPIL(t *testing.T) {
	for _, sub := range []string{"420", "422", "444"} {
		want, err := npy.ReadFile(filepath.Join("testdata", "preprocess", "img"+sub+"_pil.npy"))
		if err != nil {
			t.Fatal(err)
		}
		folder := t.TempDir()
		b, _ := os.ReadFile(filepath.Join("testdata", "preprocess", "img"+sub+".jpg"))
		os.WriteFile(filepath.Join(folder, "x.jpg"), b, 0o644)
		d, err := Open([]DataSpec{{Path: folder}}, []InputSpec{spec("x", tensor.Float32, -1, 23, 37, 3)}, Options{Preprocess: &Preprocess{Range: "0..255"}})
		if err != nil {
			t.Fatal(err)
		}
		got := collect(t, d)[0].Inputs["x"].F32()
		d.Close()
		var worst, sum float64
		for i, w := range want.U8() {
			df := math.Abs(float64(got[i]) - float64(w))
			worst = max(worst, df)
			sum += df
		}
		mean := sum / float64(len(got))
		t.Logf("%s: max %v levels, mean %.4f", sub, worst, mean)
		if worst > 3 || mean > 0.15 {
			t.Errorf("%s: differs from PIL by up to %v levels (mean %.3f)", sub, worst, mean)
		}
	}
}

// Gray conversion is PIL's convert("L") exactly.
func TestGrayMatchesPIL(t *testing.T) {
	want, err := npy.ReadFile(filepath.Join("testdata", "preprocess", "noise_gray_pil.npy"))
	if err != nil {
		t.Fatal(err)
	}
	folder := t.TempDir()
	b, _ := os.ReadFile(filepath.Join("testdata", "preprocess", "noise.png"))
	os.WriteFile(filepath.Join(folder, "noise.png"), b, 0o644)
	d, err := Open([]DataSpec{{Path: folder}}, []InputSpec{spec("x", tensor.Float32, -1, 1, 128, 128)}, Options{Preprocess: &Preprocess{Range: "0..255"}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got := collect(t, d)[0].Inputs["x"].F32()
	bad := 0
	for i, w := range want.U8() {
		if got[i] != float32(w) {
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d gray pixels differ from PIL", bad, len(got))
	}
}

// An image header claiming a huge size is refused before decoding.
func TestHugeImageRefused(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := []byte("IHDR\x00\x01\x86\xa0\x00\x01\x86\xa0\x08\x02\x00\x00\x00") // 100000 x 100000 RGB
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)-4))
	b.Write(ihdr)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(ihdr))
	folder := t.TempDir()
	os.WriteFile(filepath.Join(folder, "huge.png"), b.Bytes(), 0o644)
	d, err := Open([]DataSpec{{Path: folder}}, []InputSpec{spec("x", tensor.Float32, -1, 3, 8, 8)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = d.Iter().Next(context.Background())
	if err == nil || !strings.Contains(err.Error(), "huge.png") || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("huge image: %v", err)
	}
}
