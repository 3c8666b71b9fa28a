package calibrate

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // JPEG decoder
	_ "image/png"  // PNG decoder
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/qtool/qtool/internal/tensor"
	"github.com/x448/float16"
)

// Preprocess is the recipe that turns an image file into a model input, in
// torchvision's order: decode, resize, center crop, scale, normalize.
type Preprocess struct {
	// Resize: one number resizes the shorter side to it keeping the aspect
	// ratio (torchvision's Resize(int)); two are an exact [height, width].
	// Empty: no resize.
	Resize Dims `json:"resize,omitempty"`
	// Crop: a center crop to [size] (square) or [height, width]
	// (torchvision's CenterCrop). Empty: no crop.
	Crop Dims `json:"crop,omitempty"`
	// Color is "rgb" (default), "bgr" or "gray" (ITU-R 601 luma, as PIL's
	// convert("L") computes it).
	Color string `json:"color,omitempty"`
	// Layout is "nchw" or "nhwc"; empty: from the model input's shape (a
	// channel dim of 1 or 3 right after the batch dim means NCHW, last
	// means NHWC).
	Layout string `json:"layout,omitempty"`
	// Range is "0..1" (pixel/255, the default) or "0..255" (pixel values as
	// they are). Divisor, when set, divides the pixel values instead (256
	// for models trained on pixel/256).
	Range   string  `json:"range,omitempty"`
	Divisor float64 `json:"divisor,omitempty"`
	// Mean and Std normalize each channel after scaling: (x - mean) / std,
	// in the model's channel order (one value applies to every channel).
	Mean []float64 `json:"mean,omitempty"`
	Std  []float64 `json:"std,omitempty"`
}

// Dims is one or two sizes; it reads a bare number or a list.
type Dims []int

func (d *Dims) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*d = Dims{n}
		return nil
	}
	var l []int
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("want a size or [height, width], got %s", b)
	}
	*d = l
	return nil
}

func (p *Preprocess) divisor() (float64, error) {
	if p.Divisor != 0 {
		if !(p.Divisor > 0) || math.IsInf(p.Divisor, 0) {
			return 0, fmt.Errorf("preprocess: divisor %v must be positive", p.Divisor)
		}
		return p.Divisor, nil
	}
	switch strings.ReplaceAll(p.Range, " ", "") {
	case "", "0..1", "0-1":
		return 255, nil
	case "0..255", "0-255":
		return 1, nil
	}
	return 0, fmt.Errorf("preprocess: range %q (want 0..1 or 0..255, or a divisor)", p.Range)
}

func (p *Preprocess) validate() error {
	if _, err := p.divisor(); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		v    Dims
	}{{"resize", p.Resize}, {"crop", p.Crop}} {
		if len(d.v) > 2 {
			return fmt.Errorf("preprocess: %s takes one or two sizes, got %v", d.name, d.v)
		}
		for _, x := range d.v {
			if x <= 0 || x > 1<<15 {
				return fmt.Errorf("preprocess: %s size %d out of range", d.name, x)
			}
		}
	}
	switch strings.ToLower(p.Color) {
	case "", "rgb", "bgr", "gray", "grey", "grayscale", "l":
	default:
		return fmt.Errorf("preprocess: color %q (want rgb, bgr or gray)", p.Color)
	}
	switch strings.ToLower(p.Layout) {
	case "", "nchw", "nhwc":
	default:
		return fmt.Errorf("preprocess: layout %q (want nchw or nhwc)", p.Layout)
	}
	for _, s := range p.Std {
		if s == 0 || math.IsNaN(s) || math.IsInf(s, 0) {
			return fmt.Errorf("preprocess: std %v", p.Std)
		}
	}
	for _, m := range p.Mean {
		if math.IsNaN(m) || math.IsInf(m, 0) {
			return fmt.Errorf("preprocess: mean %v", p.Mean)
		}
	}
	return nil
}

func (p *Preprocess) gray() bool {
	switch strings.ToLower(p.Color) {
	case "gray", "grey", "grayscale", "l":
		return true
	}
	return false
}

// ---- tar archives ----

// Bounds on untrusted archives.
const (
	maxImageBytes = 256 << 20
	maxEntries    = 1 << 24
	maxPixels     = 1 << 26 // 8192x8192: the planes then take 800 MB
)

// tarArchive indexes the image members of an uncompressed tar so that any
// one can be read by offset.
type tarArchive struct {
	f     *os.File
	path  string
	tmp   string // the expanded copy of a .tar.gz
	names []string
	at    map[string][2]int64 // offset, size
}

func openTar(p string) (*tarArchive, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	var tmp string
	lower := strings.ToLower(p)
	if strings.HasSuffix(lower, ".gz") || strings.HasSuffix(lower, ".tgz") {
		// A gzip stream has no random access: expand it once into a
		// temporary tar, removed on Close.
		if f, err = gunzipToTemp(f, p); err != nil {
			return nil, err
		}
		tmp = f.Name()
	}
	ta := &tarArchive{f: f, path: p, tmp: tmp, at: map[string][2]int64{}}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			ta.Close()
			return nil, fmt.Errorf("%s: not a readable tar archive: %v", p, err)
		}
		if h.Typeflag != tar.TypeReg { // archive/tar reports old-style TypeRegA files as TypeReg
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if !isImageName(name) {
			continue
		}
		if h.Size > maxImageBytes {
			ta.Close()
			return nil, fmt.Errorf("%s:%s: %d bytes is too large for an image", p, name, h.Size)
		}
		if _, dup := ta.at[name]; dup {
			ta.Close()
			return nil, fmt.Errorf("%s: %s appears twice", p, name)
		}
		// archive/tar reads the file unbuffered: after Next the file
		// offset is where this member's data starts.
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			ta.Close()
			return nil, err
		}
		ta.at[name] = [2]int64{off, h.Size}
		ta.names = append(ta.names, name)
		if len(ta.names) > maxEntries {
			ta.Close()
			return nil, fmt.Errorf("%s: more than %d images", p, maxEntries)
		}
	}
	sort.Strings(ta.names)
	return ta, nil
}

func (ta *tarArchive) read(name string) ([]byte, error) {
	loc := ta.at[name]
	b := make([]byte, loc[1])
	if _, err := ta.f.ReadAt(b, loc[0]); err != nil {
		return nil, fmt.Errorf("%s:%s: %v", ta.path, name, err)
	}
	return b, nil
}

func (ta *tarArchive) Close() error {
	err := ta.f.Close()
	if ta.tmp != "" {
		os.Remove(ta.tmp)
	}
	return err
}

// maxTarBytes bounds what a compressed tar may expand to on disk.
const maxTarBytes = 64 << 30

func gunzipToTemp(f *os.File, p string) (*os.File, error) {
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: not a gzip file: %v", p, err)
	}
	tmp, err := os.CreateTemp("", "qtool-data-*.tar")
	if err != nil {
		return nil, err
	}
	n, err := io.Copy(tmp, io.LimitReader(zr, maxTarBytes+1))
	if err == nil && n > maxTarBytes {
		err = fmt.Errorf("expands to more than %d bytes", int64(maxTarBytes))
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("%s: %v", p, err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	return tmp, nil
}

// ---- image source ----

type imageSource struct {
	root    string
	names   []string // relative paths, sorted
	labels  []int
	classes []string
	tar     *tarArchive
	pp      Preprocess
	in      InputSpec
	nchw    bool
	c, h, w int // output channels and size (h, w 0: the image's own)
	div     float64
}

// newImageSource prepares the images of a folder or tar for one input.
// Classes are the images' folders relative to the deepest folder all of
// them share, sorted: test/cat/1.jpg and test/dog/2.jpg are classes 0 and 1.
func newImageSource(root string, names []string, ta *tarArchive, in InputSpec, pp *Preprocess) (*imageSource, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no images (.jpg, .jpeg, .png)", root)
	}
	s := &imageSource{root: root, names: names, tar: ta, in: in}
	if pp != nil {
		s.pp = *pp
	}
	if err := s.pp.validate(); err != nil {
		return nil, fmt.Errorf("%s: %v", root, err)
	}
	s.div, _ = s.pp.divisor()
	if in.DType != tensor.Float32 && in.DType != tensor.Float16 && in.DType != tensor.Float64 && in.DType != tensor.Uint8 && in.DType != tensor.Undefined {
		return nil, fmt.Errorf("%s: model input %q is %v: images can feed float or uint8 inputs", root, in.Name, in.DType)
	}
	if in.DType == tensor.Uint8 && (s.div != 1 || len(s.pp.Mean) > 0 || len(s.pp.Std) > 0) {
		return nil, fmt.Errorf("%s: model input %q is uint8: it takes raw pixels, so set range 0..255 and no mean/std", root, in.Name)
	}
	if err := s.layout(); err != nil {
		return nil, fmt.Errorf("%s: %v", root, err)
	}
	for _, v := range [][]float64{s.pp.Mean, s.pp.Std} {
		if len(v) > 1 && len(v) != s.c {
			return nil, fmt.Errorf("%s: mean/std have %d values for %d channels", root, len(v), s.c)
		}
	}
	// Classes from the folder structure.
	dirs := make([]string, len(names))
	for i, n := range names {
		dirs[i] = path.Dir(n)
	}
	common := dirs[0]
	for _, d := range dirs[1:] {
		for common != "." && d != common && !strings.HasPrefix(d, common+"/") {
			common = path.Dir(common)
		}
	}
	set := map[string]bool{}
	for _, d := range dirs {
		set[d] = true
	}
	if len(set) > 1 {
		for d := range set {
			s.classes = append(s.classes, d)
		}
		sort.Strings(s.classes)
		idx := map[string]int{}
		for i, c := range s.classes {
			idx[c] = i
		}
		s.labels = make([]int, len(names))
		for i, d := range dirs {
			s.labels[i] = idx[d]
		}
		for i, c := range s.classes {
			if common != "." {
				s.classes[i] = strings.TrimPrefix(c, common+"/")
			}
		}
	}
	return s, nil
}

// layout works out channels-first or last, the channel count and the
// output size from the model input's shape and the recipe.
func (s *imageSource) layout() error {
	sh := s.in.Shape
	lay := strings.ToLower(s.pp.Layout)
	if sh != nil && len(sh) != 4 {
		return fmt.Errorf("model input %q has shape %v: images need a 4-d input (NCHW or NHWC)", s.in.Name, sh)
	}
	isC := func(i int) bool { return sh != nil && sh[i].Known() && (sh[i].Value == 1 || sh[i].Value == 3) }
	if lay == "" {
		switch {
		case isC(1) && !isC(3):
			lay = "nchw"
		case isC(3) && !isC(1):
			lay = "nhwc"
		case isC(1) && isC(3):
			return fmt.Errorf("model input %q has shape %v: say layout nchw or nhwc in the preprocess config", s.in.Name, sh)
		default:
			lay = "nchw"
		}
	}
	s.nchw = lay == "nchw"
	ci, hi, wi := 1, 2, 3
	if !s.nchw {
		ci, hi, wi = 3, 1, 2
	}
	s.c = 3
	if s.pp.gray() {
		s.c = 1
	}
	if sh != nil && sh[ci].Known() {
		c := int(sh[ci].Value)
		if c != 1 && c != 3 {
			return fmt.Errorf("model input %q has %d channels in layout %s: images have 1 or 3", s.in.Name, c, lay)
		}
		if c == 1 && s.pp.Color == "" {
			s.c = 1
		}
		if c != s.c {
			return fmt.Errorf("model input %q has %d channels but color %q gives %d", s.in.Name, c, s.pp.Color, s.c)
		}
	}
	// Output size: the crop, else an exact resize, else the model's dims.
	switch {
	case len(s.pp.Crop) > 0:
		s.h, s.w = s.pp.Crop[0], s.pp.Crop[len(s.pp.Crop)-1]
	case len(s.pp.Resize) == 2:
		s.h, s.w = s.pp.Resize[0], s.pp.Resize[1]
	}
	if sh != nil {
		for _, d := range []struct {
			i   int
			out *int
			n   string
		}{{hi, &s.h, "height"}, {wi, &s.w, "width"}} {
			if !sh[d.i].Known() {
				continue
			}
			v := int(sh[d.i].Value)
			if *d.out != 0 && *d.out != v {
				return fmt.Errorf("the recipe makes images of %s %d but model input %q (shape %v) wants %d", d.n, *d.out, s.in.Name, sh, v)
			}
			*d.out = v
		}
	}
	return nil
}

func (s *imageSource) Len() int { return len(s.names) }

func (s *imageSource) Label(i int) int {
	if s.labels == nil {
		return -1
	}
	return s.labels[i]
}

func (s *imageSource) Where(i int) string {
	if s.tar != nil {
		return s.root + ":" + s.names[i]
	}
	return filepath.Join(s.root, filepath.FromSlash(s.names[i]))
}

func (s *imageSource) Close() error {
	if s.tar != nil {
		return s.tar.Close()
	}
	return nil
}

func (s *imageSource) Sample(i int) (*tensor.Tensor, error) {
	var data []byte
	var err error
	if s.tar != nil {
		data, err = s.tar.read(s.names[i])
	} else {
		p := s.Where(i)
		var st os.FileInfo
		if st, err = os.Stat(p); err == nil && st.Size() > maxImageBytes {
			err = fmt.Errorf("%d bytes is too large for an image", st.Size())
		}
		if err == nil {
			data, err = os.ReadFile(p)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v", s.Where(i), err)
	}
	t, err := s.decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", s.Where(i), err)
	}
	return t, nil
}

// decode turns image bytes into a preprocessed [C,H,W] or [H,W,C] sample.
func (s *imageSource) decode(data []byte) (*tensor.Tensor, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a readable JPEG or PNG image: %v", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return nil, fmt.Errorf("image size %dx%d out of range", cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a readable JPEG or PNG image: %v", err)
	}
	pl := toPlanes(img, s.c == 1)
	if r := s.pp.Resize; len(r) > 0 {
		oh, ow := 0, 0
		if len(r) == 2 {
			oh, ow = r[0], r[1]
		} else {
			// torchvision: the shorter side becomes r, the longer one
			// int(r * long / short).
			if pl.h <= pl.w {
				oh, ow = r[0], int(float64(r[0])*float64(pl.w)/float64(pl.h))
			} else {
				oh, ow = int(float64(r[0])*float64(pl.h)/float64(pl.w)), r[0]
			}
		}
		if int64(oh)*int64(ow) > maxPixels || oh <= 0 || ow <= 0 {
			return nil, fmt.Errorf("resize to %dx%d out of range", oh, ow)
		}
		if oh != pl.h || ow != pl.w {
			pl = pl.resize(oh, ow)
		}
	}
	if c := s.pp.Crop; len(c) > 0 {
		ch, cw := c[0], c[len(c)-1]
		if ch > pl.h || cw > pl.w {
			return nil, fmt.Errorf("image of %dx%d (after resize) is smaller than the crop %dx%d", pl.h, pl.w, ch, cw)
		}
		// torchvision: int(round((H - h) / 2)), Python rounding half to even.
		top := int(math.RoundToEven(float64(pl.h-ch) / 2))
		left := int(math.RoundToEven(float64(pl.w-cw) / 2))
		pl = pl.crop(top, left, ch, cw)
	}
	if (s.h != 0 && pl.h != s.h) || (s.w != 0 && pl.w != s.w) {
		return nil, fmt.Errorf("image is %dx%d (height x width) after preprocessing, model input %q wants %dx%d: set resize/crop in the preprocess config",
			pl.h, pl.w, s.in.Name, s.h, s.w)
	}
	return s.finish(pl)
}

// finish scales, normalizes, orders the channels and lays out the sample.
func (s *imageSource) finish(pl *planes) (*tensor.Tensor, error) {
	c, h, w := pl.c, pl.h, pl.w
	shape := []int{c, h, w}
	if !s.nchw {
		shape = []int{h, w, c}
	}
	bgr := strings.ToLower(s.pp.Color) == "bgr"
	n := c * h * w
	out := make([]float32, n)
	for ch := 0; ch < c; ch++ {
		src := pl.p[ch]
		oc := ch
		if bgr {
			oc = c - 1 - ch
		}
		mean, std := 0.0, 1.0
		if len(s.pp.Mean) == 1 {
			mean = s.pp.Mean[0]
		} else if len(s.pp.Mean) > 0 {
			mean = s.pp.Mean[oc]
		}
		if len(s.pp.Std) == 1 {
			std = s.pp.Std[0]
		} else if len(s.pp.Std) > 0 {
			std = s.pp.Std[oc]
		}
		// float32 arithmetic as torchvision's ToTensor + Normalize.
		div, m, sd := float32(s.div), float32(mean), float32(std)
		for i, v := range src {
			x := (v/div - m) / sd
			if s.nchw {
				out[oc*h*w+i] = x
			} else {
				out[i*c+oc] = x
			}
		}
	}
	switch s.in.DType {
	case tensor.Uint8:
		u := make([]uint8, n)
		for i, v := range out {
			u[i] = uint8(max(0, min(255, math.RoundToEven(float64(v)))))
		}
		return &tensor.Tensor{DType: tensor.Uint8, Shape: shape, Data: u}, nil
	case tensor.Float16:
		f := make([]float16.Float16, n)
		for i, v := range out {
			f[i] = float16.Fromfloat32(v)
		}
		return &tensor.Tensor{DType: tensor.Float16, Shape: shape, Data: f}, nil
	case tensor.Float64:
		f := make([]float64, n)
		for i, v := range out {
			f[i] = float64(v)
		}
		return &tensor.Tensor{DType: tensor.Float64, Shape: shape, Data: f}, nil
	}
	return tensor.FromFloat32(shape, out), nil
}

// planes is an image as float32 planes of 0..255 values.
type planes struct {
	c, h, w int
	p       [][]float32
}

func newPlanes(c, h, w int) *planes {
	pl := &planes{c: c, h: h, w: w, p: make([][]float32, c)}
	for i := range pl.p {
		pl.p[i] = make([]float32, h*w)
	}
	return pl
}

// toPlanes converts any decoded image to RGB (or gray) planes. Alpha is
// dropped (the colour values are taken unpremultiplied, as PIL's
// convert("RGB") does).
func toPlanes(img image.Image, gray bool) *planes {
	b := img.Bounds()
	h, w := b.Dy(), b.Dx()
	rgb := newPlanes(3, h, w)
	r, g, bl := rgb.p[0], rgb.p[1], rgb.p[2]
	switch m := img.(type) {
	case *image.YCbCr:
		if libjpegYCbCr(m, r, g, bl) {
			break
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				yi := m.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := m.COffset(b.Min.X+x, b.Min.Y+y)
				R, G, B := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				k := y*w + x
				r[k], g[k], bl[k] = float32(R), float32(G), float32(B)
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[(y)*m.Stride : y*m.Stride+w]
			for x, v := range row {
				k := y*w + x
				r[k], g[k], bl[k] = float32(v), float32(v), float32(v)
			}
		}
		if gray {
			return &planes{c: 1, h: h, w: w, p: [][]float32{r}}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := 0; x < w; x++ {
				k := y*w + x
				r[k], g[k], bl[k] = float32(row[4*x]), float32(row[4*x+1]), float32(row[4*x+2])
			}
		}
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				k := y*w + x
				r[k], g[k], bl[k] = float32(c.R), float32(c.G), float32(c.B)
			}
		}
	}
	if !gray {
		return rgb
	}
	// PIL's convert("L") (rgb2l): ITU-R 601 luma in 16-bit fixed point.
	l := make([]float32, h*w)
	for k := range l {
		v := (int(r[k])*19595 + int(g[k])*38470 + int(bl[k])*7471 + 0x8000) >> 16
		l[k] = float32(v)
	}
	return &planes{c: 1, h: h, w: w, p: [][]float32{l}}
}

func (pl *planes) crop(top, left, h, w int) *planes {
	out := newPlanes(pl.c, h, w)
	for c := range pl.p {
		for y := 0; y < h; y++ {
			copy(out.p[c][y*w:(y+1)*w], pl.p[c][(top+y)*pl.w+left:(top+y)*pl.w+left+w])
		}
	}
	return out
}

// resize is PIL's Image.resize with BILINEAR (what torchvision's Resize
// does to PIL images), bit for bit: a triangle filter whose support widens
// by the scale factor when shrinking (antialiasing), coefficients in 22-bit
// fixed point, a horizontal pass rounded to 8 bits, then a vertical one;
// each pass only where that dimension changes. The planes hold 8-bit values.
func (pl *planes) resize(oh, ow int) *planes {
	cur := pl
	if ow != cur.w {
		ks := resampleWeights(cur.w, ow)
		out := newPlanes(cur.c, cur.h, ow)
		for c := range cur.p {
			src, dst := cur.p[c], out.p[c]
			for y := 0; y < cur.h; y++ {
				row := src[y*cur.w : (y+1)*cur.w]
				for x, k := range ks {
					ss := int64(1) << (pilPrecision - 1)
					for j, wt := range k.w {
						ss += int64(row[k.start+j]) * int64(wt)
					}
					dst[y*ow+x] = clip8(ss)
				}
			}
		}
		cur = out
	}
	if oh != cur.h {
		ks := resampleWeights(cur.h, oh)
		w := cur.w
		out := newPlanes(cur.c, oh, w)
		for c := range cur.p {
			src, dst := cur.p[c], out.p[c]
			for y, k := range ks {
				for x := 0; x < w; x++ {
					ss := int64(1) << (pilPrecision - 1)
					for j, wt := range k.w {
						ss += int64(src[(k.start+j)*w+x]) * int64(wt)
					}
					dst[y*w+x] = clip8(ss)
				}
			}
		}
		cur = out
	}
	return cur
}

// pilPrecision is PIL's PRECISION_BITS for 8-bit resampling (32 - 8 - 2).
const pilPrecision = 22

func clip8(ss int64) float32 {
	v := ss >> pilPrecision
	return float32(max(0, min(255, v)))
}

type kernel struct {
	start int
	w     []int32
}

// resampleWeights is PIL's precompute_coeffs for the bilinear filter
// followed by normalize_coeffs_8bpc.
func resampleWeights(in, out int) []kernel {
	scale := float64(in) / float64(out)
	filterScale := max(scale, 1)
	support := 1.0 * filterScale
	ks := make([]kernel, out)
	w := make([]float64, 0, int(math.Ceil(support))*2+1)
	for x := range ks {
		center := (float64(x) + 0.5) * scale
		xmin := max(0, int(center-support+0.5))
		xmax := min(in, int(center+support+0.5))
		w = w[:0]
		var sum float64
		ss := 1 / filterScale
		for i := xmin; i < xmax; i++ {
			v := max(0, 1-math.Abs((float64(i)-center+0.5)*ss))
			w = append(w, v)
			sum += v
		}
		k := kernel{start: xmin, w: make([]int32, len(w))}
		for i, v := range w {
			if sum != 0 {
				v /= sum
			}
			if v < 0 {
				k.w[i] = int32(-0.5 + v*(1<<pilPrecision))
			} else {
				k.w[i] = int32(0.5 + v*(1<<pilPrecision))
			}
		}
		ks[x] = k
	}
	return ks
}

// Classes returns the class names of an image source's labels (sorted, as
// the labels index them), or nil for data without classes.
func (d *Dataset) Classes() []string {
	if s, ok := d.srcs[0].(*imageSource); ok {
		return s.classes
	}
	return nil
}

// libjpegYCbCr converts a decoded JPEG to RGB as libjpeg(-turbo) does by
// default, and so as PIL and torchvision see it: chroma subsampled 2x
// horizontally (4:2:2) or in both directions (4:2:0) is upsampled with
// libjpeg's "fancy" triangle filter (3/4 nearer + 1/4 further sample, its
// rounding biases, edges replicated) rather than Go's sample replication,
// and YCbCr becomes RGB through libjpeg's 16-bit fixed-point tables. The
// inverse DCTs of Go and libjpeg still differ by a level here and there.
// It reports false for layouts it does not handle (the caller falls back).
func libjpegYCbCr(m *image.YCbCr, r, g, b []float32) bool {
	bd := m.Bounds()
	if bd.Min != (image.Point{}) {
		return false
	}
	w, h := bd.Dx(), bd.Dy()
	var v2 bool
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio444:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				k := y*w + x
				ci := y*m.CStride + x
				r[k], g[k], b[k] = ycc(m.Y[y*m.YStride+x], m.Cb[ci], m.Cr[ci])
			}
		}
		return true
	case image.YCbCrSubsampleRatio422:
	case image.YCbCrSubsampleRatio420:
		v2 = true
	default:
		return false
	}
	cw := (w + 1) / 2
	ch := h
	if v2 {
		ch = (h + 1) / 2
	}
	if cw < 2 || len(m.Cb) < (ch-1)*m.CStride+cw || len(m.Cr) < (ch-1)*m.CStride+cw {
		return false
	}
	cbRow := make([]uint8, 2*cw)
	crRow := make([]uint8, 2*cw)
	sums := make([]int32, cw)
	for y := 0; y < h; y++ {
		for _, pl := range []struct {
			src []uint8
			dst []uint8
		}{{m.Cb, cbRow}, {m.Cr, crRow}} {
			if v2 {
				in0 := y / 2
				in1 := in0 - 1
				if y%2 == 1 {
					in1 = in0 + 1
				}
				in1 = max(0, min(ch-1, in1))
				r0 := pl.src[in0*m.CStride : in0*m.CStride+cw]
				r1 := pl.src[in1*m.CStride : in1*m.CStride+cw]
				for i := range sums {
					sums[i] = 3*int32(r0[i]) + int32(r1[i])
				}
				fancyRow16(sums, pl.dst)
			} else {
				fancyRow4(pl.src[y*m.CStride:y*m.CStride+cw], pl.dst)
			}
		}
		for x := 0; x < w; x++ {
			k := y*w + x
			r[k], g[k], b[k] = ycc(m.Y[y*m.YStride+x], cbRow[x], crRow[x])
		}
	}
	return true
}

// fancyRow16 is h2v2_fancy_upsample's horizontal step on column sums
// (3*nearer row + further row).
func fancyRow16(cs []int32, out []uint8) {
	n := len(cs)
	out[0] = uint8((cs[0]*4 + 8) >> 4)
	out[1] = uint8((cs[0]*3 + cs[1] + 7) >> 4)
	for i := 1; i < n-1; i++ {
		out[2*i] = uint8((cs[i]*3 + cs[i-1] + 8) >> 4)
		out[2*i+1] = uint8((cs[i]*3 + cs[i+1] + 7) >> 4)
	}
	out[2*n-2] = uint8((cs[n-1]*3 + cs[n-2] + 8) >> 4)
	out[2*n-1] = uint8((cs[n-1]*4 + 7) >> 4)
}

// fancyRow4 is h2v1_fancy_upsample.
func fancyRow4(in []uint8, out []uint8) {
	n := len(in)
	out[0] = in[0]
	out[1] = uint8((int32(in[0])*3 + int32(in[1]) + 2) >> 2)
	for i := 1; i < n-1; i++ {
		v := int32(in[i]) * 3
		out[2*i] = uint8((v + int32(in[i-1]) + 1) >> 2)
		out[2*i+1] = uint8((v + int32(in[i+1]) + 2) >> 2)
	}
	out[2*n-2] = uint8((int32(in[n-1])*3 + int32(in[n-2]) + 1) >> 2)
	out[2*n-1] = in[n-1]
}

// ycc is libjpeg's ycc_rgb_convert (jdcolor.c) for one pixel.
func ycc(y, cb, cr uint8) (float32, float32, float32) {
	const half = 1 << 15
	fix := func(v float64) int64 { return int64(v*(1<<16) + 0.5) }
	x := int64(cr) - 128
	z := int64(cb) - 128
	yy := int64(y)
	rr := yy + (fix(1.40200)*x+half)>>16
	gg := yy + (-fix(0.34414)*z+half-fix(0.71414)*x)>>16
	bb := yy + (fix(1.77200)*z+half)>>16
	c := func(v int64) float32 { return float32(max(0, min(255, v))) }
	return c(rr), c(gg), c(bb)
}
