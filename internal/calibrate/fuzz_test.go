package calibrate

import (
	"bytes"
	"image"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool/qtool/internal/tensor"
)

// Damaged or hostile image files give errors, never panics: the decoder,
// the size checks and every preprocessing path (resize, crop, gray, NHWC)
// run on whatever the fuzzer makes of the committed JPEG and PNG seeds.
func FuzzDecodeImage(f *testing.F) {
	for _, p := range []string{"img.png", "img420.jpg", "img422.jpg"} {
		b, err := os.ReadFile(filepath.Join("testdata", "preprocess", p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(0))
	}
	recipes := []Preprocess{
		{},
		{Resize: Dims{8}, Crop: Dims{6}, Mean: []float64{0.5}, Std: []float64{0.25}},
		{Resize: Dims{5, 7}, Color: "gray", Layout: "nhwc", Range: "0..255"},
		{Crop: Dims{3, 2}, Color: "bgr", Divisor: 256},
	}
	f.Fuzz(func(t *testing.T, data []byte, recipe uint8) {
		// Images up to maxPixels are legitimate and take ~1 GB to
		// preprocess; the fuzzer keeps to small ones so its workers fit
		// the machine. The size check itself is tested on its own.
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(data)); err == nil && int64(cfg.Width)*int64(cfg.Height) > 1<<20 {
			return
		}
		pp := recipes[int(recipe)%len(recipes)]
		s, err := newImageSource("fuzz", []string{"x.png"}, nil, InputSpec{Name: "x", DType: tensor.Float32}, &pp)
		if err != nil {
			t.Fatal(err)
		}
		x, err := s.decode(data)
		if err != nil {
			return
		}
		if err := x.Validate(); err != nil {
			t.Fatal(err)
		}
		if len(x.Shape) != 3 || x.Shape[0]*x.Shape[1]*x.Shape[2] == 0 {
			t.Fatalf("decoded shape %v", x.Shape)
		}
	})
}
