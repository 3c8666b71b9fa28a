package calibrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
	"github.com/x448/float16"
)

// InputSpec is what the model expects of one input: the declared dtype and
// shape, first dim the batch.
type InputSpec struct {
	Name  string
	DType tensor.DType
	Shape graph.Shape // nil when the model does not declare it
}

// InputSpecs lists a graph's runtime inputs.
func InputSpecs(g *graph.Graph) []InputSpec {
	out := make([]InputSpec, 0, len(g.Inputs))
	for _, v := range g.Inputs {
		if v.Const != nil {
			continue
		}
		out = append(out, InputSpec{Name: v.Name, DType: v.DType, Shape: v.Shape})
	}
	return out
}

// DataSpec names the data of one model input, or of all of them.
type DataSpec struct {
	// Input is the model input fed from Path. Empty: the model's only
	// input, or, for an .npz, every input by array name.
	Input string `json:"input,omitempty"`
	// Path is a .npy or .npz file, a folder of .npy files, a folder of
	// images, or a .tar (.tar.gz, .tgz) of images.
	Path string `json:"path"`
	// Preprocess is the recipe for images (nil: the dataset-wide one).
	Preprocess *Preprocess `json:"preprocess,omitempty"`
}

// Options select and group the samples.
type Options struct {
	// Limit is the number of samples to use (0: all).
	Limit int
	// Offset skips that many samples of the visiting order first, so that
	// separate processes can calibrate disjoint parts of one (shuffled)
	// subset and merge their tables: offset 0 and 500 with limit 500 split
	// the first 1000.
	Offset int
	// Shuffle visits the samples in a random order fixed by Seed (the same
	// on every machine and Go version): with Limit, a random subset.
	Shuffle bool
	Seed    uint64
	// Batch is the number of samples per model run (0: 1). A model whose
	// batch dim is fixed runs batches of exactly that size whatever Batch
	// says (Dataset.Note tells); leftover samples are dropped and counted.
	Batch int
	// SkipNonFinite skips (and counts) samples holding NaN or Inf instead
	// of failing on them.
	SkipNonFinite bool
	// Preprocess is the image recipe for sources without their own.
	Preprocess *Preprocess
}

// SourceInfo describes one data source in the calibration table.
type SourceInfo struct {
	Inputs     []string    `json:"inputs"`
	Path       string      `json:"path"`
	Kind       string      `json:"kind"` // npy, npz, npy-folder, image-folder, image-tar
	Samples    int         `json:"samples"`
	Preprocess *Preprocess `json:"preprocess,omitempty"`
}

// source yields the samples of one model input.
type source interface {
	Len() int
	// Sample reads sample i as stored (not yet checked against the model).
	Sample(i int) (*tensor.Tensor, error)
	// Where names sample i for error messages: the file, and the index
	// inside it when the file holds many.
	Where(i int) string
	// Label is sample i's class index (-1 when the data has no labels).
	Label(i int) int
	Close() error
}

// Dataset feeds batches of samples to a model's inputs. It reads each batch
// when asked, so memory holds only the batches in flight, whatever the size
// of the data.
type Dataset struct {
	inputs  []InputSpec
	srcs    []source // parallel to inputs
	owners  []source // distinct sources, to close
	order   []int
	batch   int
	fixed   bool // the model's batch dim is fixed: batches are exactly batch
	skipNF  bool
	Sources []SourceInfo
	// Total is the number of samples in the data, before Limit.
	Total int
	// Note explains a batch size other than the one asked for (the model
	// fixes it), for the user.
	Note string
}

// Len is the number of samples the dataset visits (after Limit).
func (d *Dataset) Len() int { return len(d.order) }

// BatchSize is the number of samples per batch.
func (d *Dataset) BatchSize() int { return d.batch }

// Close releases the files (and temporary files) behind the dataset.
func (d *Dataset) Close() error {
	var first error
	for _, s := range d.owners {
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
	}
	d.owners = nil
	return first
}

// Open builds a dataset for the given model inputs.
func Open(specs []DataSpec, inputs []InputSpec, o Options) (ds *Dataset, err error) {
	if len(inputs) == 0 {
		return nil, errors.New("the model has no inputs to feed")
	}
	if len(specs) == 0 {
		return nil, errors.New("no data given")
	}
	if o.Limit < 0 || o.Batch < 0 || o.Offset < 0 {
		return nil, fmt.Errorf("limit %d, offset %d and batch %d must not be negative", o.Limit, o.Offset, o.Batch)
	}
	d := &Dataset{inputs: inputs, srcs: make([]source, len(inputs)), skipNF: o.SkipNonFinite}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	byName := map[string]int{}
	var names []string
	for i, in := range inputs {
		byName[in.Name] = i
		names = append(names, in.Name)
	}
	assign := func(name string, s source, where string) error {
		i, ok := byName[name]
		if !ok {
			return fmt.Errorf("%s: the model has no input %q (inputs: %s)", where, name, strings.Join(names, ", "))
		}
		if d.srcs[i] != nil {
			return fmt.Errorf("%s: model input %q is given data twice", where, name)
		}
		d.srcs[i] = s
		return nil
	}
	for _, sp := range specs {
		pp := sp.Preprocess
		if pp == nil {
			pp = o.Preprocess
		}
		if strings.HasSuffix(strings.ToLower(sp.Path), ".npz") {
			arrays, err := openNPZ(sp.Path)
			if err != nil {
				return nil, err
			}
			for _, a := range arrays {
				d.owners = append(d.owners, a.src)
			}
			info := SourceInfo{Path: sp.Path, Kind: "npz"}
			switch {
			case sp.Input != "":
				if len(arrays) != 1 {
					return nil, fmt.Errorf("%s: holds %d arrays; for input %q it must hold one", sp.Path, len(arrays), sp.Input)
				}
				if err := assign(sp.Input, arrays[0].src, sp.Path); err != nil {
					return nil, err
				}
				info.Inputs = []string{sp.Input}
			case len(arrays) == 1 && len(inputs) == 1:
				if err := assign(inputs[0].Name, arrays[0].src, sp.Path); err != nil {
					return nil, err
				}
				info.Inputs = []string{inputs[0].Name}
			default:
				for _, a := range arrays {
					if err := assign(a.name, a.src, sp.Path+": array "+a.name); err != nil {
						return nil, err
					}
					info.Inputs = append(info.Inputs, a.name)
				}
			}
			info.Samples = arrays[0].src.Len()
			d.Sources = append(d.Sources, info)
			continue
		}
		name := sp.Input
		if name == "" {
			if len(inputs) != 1 {
				return nil, fmt.Errorf("%s: the model has %d inputs (%s): say which one this data feeds (NAME=PATH)", sp.Path, len(inputs), strings.Join(names, ", "))
			}
			name = inputs[0].Name
		}
		i, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("%s: the model has no input %q (inputs: %s)", sp.Path, name, strings.Join(names, ", "))
		}
		s, kind, err := openSource(sp.Path, inputs[i], pp)
		if err != nil {
			return nil, err
		}
		d.owners = append(d.owners, s)
		if err := assign(name, s, sp.Path); err != nil {
			return nil, err
		}
		info := SourceInfo{Inputs: []string{name}, Path: sp.Path, Kind: kind, Samples: s.Len()}
		if kind == "image-folder" || kind == "image-tar" {
			info.Preprocess = pp
		}
		d.Sources = append(d.Sources, info)
	}
	var missing []string
	for i, s := range d.srcs {
		if s == nil {
			missing = append(missing, inputs[i].Name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("no data for model input(s) %s", strings.Join(missing, ", "))
	}
	n := d.srcs[0].Len()
	for i, s := range d.srcs {
		if s.Len() != n {
			return nil, fmt.Errorf("input %q has %d samples (%s) but input %q has %d (%s): every input needs one per sample",
				inputs[0].Name, n, d.srcs[0].Where(0), inputs[i].Name, s.Len(), s.Where(0))
		}
	}
	d.Total = n
	if n == 0 {
		return nil, fmt.Errorf("%s: no samples", specs[0].Path)
	}
	// The batch dim of every input: fixed (a known first dim) or free.
	fixedB := 0
	for _, in := range inputs {
		if len(in.Shape) > 0 && in.Shape[0].Known() {
			b := int(in.Shape[0].Value)
			if b == 0 {
				return nil, fmt.Errorf("model input %q has a batch dim of 0", in.Name)
			}
			if fixedB != 0 && b != fixedB {
				return nil, fmt.Errorf("model inputs have different fixed batch dims (%d and %d)", fixedB, b)
			}
			fixedB = b
		}
	}
	switch {
	case fixedB != 0:
		if o.Batch != 0 && o.Batch != fixedB {
			d.Note = fmt.Sprintf("the model's batch dim is fixed at %d: running batches of %d samples, not %d", fixedB, fixedB, o.Batch)
		}
		d.batch, d.fixed = fixedB, true
	case o.Batch > 0:
		d.batch = o.Batch
	default:
		d.batch = 1
	}
	if o.Offset >= n {
		paths := make([]string, len(specs))
		for i, sp := range specs {
			paths[i] = sp.Path
		}
		return nil, fmt.Errorf("%s: offset %d: the data has only %d samples", strings.Join(paths, ", "), o.Offset, n)
	}
	end := n
	if o.Limit > 0 && o.Offset+o.Limit < n {
		end = o.Offset + o.Limit
	}
	if o.Shuffle {
		d.order = Permutation(n, end, o.Seed)[o.Offset:]
	} else {
		d.order = make([]int, end-o.Offset)
		for i := range d.order {
			d.order[i] = o.Offset + i
		}
	}
	return d, nil
}

// openSource opens a .npy file, a folder of .npy files or images, or a .tar
// of images, as samples for the given input.
func openSource(path string, in InputSpec, pp *Preprocess) (source, string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, "", err
	}
	lower := strings.ToLower(path)
	switch {
	case st.IsDir():
		npys, images, err := listFolder(path)
		if err != nil {
			return nil, "", err
		}
		switch {
		case len(npys) > 0 && len(images) > 0:
			return nil, "", fmt.Errorf("%s: holds both .npy files and images; use one kind per folder", path)
		case len(npys) > 0:
			return &npyFolder{dir: path, files: npys}, "npy-folder", nil
		case len(images) > 0:
			s, err := newImageSource(path, images, nil, in, pp)
			return s, "image-folder", err
		}
		return nil, "", fmt.Errorf("%s: no .npy files or images (.jpg, .jpeg, .png) in the folder", path)
	case strings.HasSuffix(lower, ".npy"):
		rf, err := openNPYRows(path)
		if err != nil {
			return nil, "", err
		}
		return rf, "npy", nil
	case strings.HasSuffix(lower, ".tar"), strings.HasSuffix(lower, ".tar.gz"), strings.HasSuffix(lower, ".tgz"):
		ta, err := openTar(path)
		if err != nil {
			return nil, "", err
		}
		s, err := newImageSource(path, ta.names, ta, in, pp)
		if err != nil {
			ta.Close()
		}
		return s, "image-tar", err
	}
	return nil, "", fmt.Errorf("%s: unknown data format (want .npy, .npz, .tar, or a folder of .npy files or images)", path)
}

// listFolder lists the .npy files directly in dir, and the images in dir
// and its subfolders, both sorted by path.
func listFolder(dir string) (npys, images []string, err error) {
	const maxFiles = 1 << 24
	err = filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case strings.HasSuffix(strings.ToLower(rel), ".npy") && !strings.Contains(rel, "/"):
			npys = append(npys, rel)
		case isImageName(rel):
			images = append(images, rel)
		}
		if len(npys)+len(images) > maxFiles {
			return fmt.Errorf("more than %d files", maxFiles)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	sort.Strings(npys)
	sort.Strings(images)
	return npys, images, nil
}

func isImageName(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".jpg", ".jpeg", ".png":
		return !strings.HasPrefix(filepath.Base(p), ".")
	}
	return false
}

// Batch is one group of samples, stacked along a new first axis per input.
type Batch struct {
	Inputs map[string]*tensor.Tensor
	// Samples are the dataset indices of the samples, in order.
	Samples []int
	// Labels are their class indices (-1 without labels).
	Labels []int
}

// Iterator walks a dataset's batches in order.
type Iterator struct {
	d   *Dataset
	pos int // next position in d.order
	// Skipped counts samples skipped for NaN/Inf; Dropped those left over
	// after the last full batch of a fixed-batch model.
	Skipped, Dropped int
}

// Iter starts a walk over the batches.
func (d *Dataset) Iter() *Iterator { return &Iterator{d: d} }

// Done is the number of samples consumed so far (used, skipped or dropped).
func (it *Iterator) Done() int { return it.pos }

// Next returns the next batch, or io.EOF after the last one.
func (it *Iterator) Next(ctx context.Context) (*Batch, error) {
	d := it.d
	per := make([][]*tensor.Tensor, len(d.inputs))
	b := &Batch{}
	for len(b.Samples) < d.batch && it.pos < len(d.order) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		idx := d.order[it.pos]
		it.pos++
		ts := make([]*tensor.Tensor, len(d.inputs))
		skip := false
		for k, s := range d.srcs {
			t, err := s.Sample(idx)
			if err != nil {
				return nil, err
			}
			if t, err = d.checkSample(k, t, s.Where(idx)); err != nil {
				if errors.Is(err, errNonFinite) && d.skipNF {
					skip = true
					break
				}
				return nil, err
			}
			ts[k] = t
		}
		if skip {
			it.Skipped++
			continue
		}
		for k := range ts {
			per[k] = append(per[k], ts[k])
		}
		b.Samples = append(b.Samples, idx)
		b.Labels = append(b.Labels, d.srcs[0].Label(idx))
	}
	if len(b.Samples) == 0 {
		return nil, io.EOF
	}
	if d.fixed && len(b.Samples) < d.batch {
		it.Dropped += len(b.Samples)
		return nil, io.EOF
	}
	b.Inputs = make(map[string]*tensor.Tensor, len(d.inputs))
	for k, in := range d.inputs {
		t, err := stack(per[k])
		if err != nil {
			return nil, fmt.Errorf("input %q, samples %v: %v (use --batch 1 for samples of different shapes)", in.Name, b.Samples, err)
		}
		b.Inputs[in.Name] = t
	}
	return b, nil
}

var errNonFinite = errors.New("NaN or Inf in the data")

// checkSample checks a sample against the model input k and returns it
// with the per-sample shape (a leading batch dim of 1 is dropped).
func (d *Dataset) checkSample(k int, t *tensor.Tensor, where string) (*tensor.Tensor, error) {
	in := d.inputs[k]
	if in.DType != tensor.Undefined && t.DType != in.DType {
		hint := ""
		if t.DType.IsFloat() && in.DType.IsFloat() {
			hint = fmt.Sprintf(" (convert it, e.g. with numpy's arr.astype(np.%s))", in.DType)
		}
		return nil, fmt.Errorf("%s: data is %v, model input %q wants %v%s", where, t.DType, in.Name, in.DType, hint)
	}
	if in.Shape != nil {
		want := in.Shape[1:]
		if len(in.Shape) == 0 {
			return nil, fmt.Errorf("model input %q is a scalar: it has no batch dim to stack samples on", in.Name)
		}
		shape := t.Shape
		if len(shape) == len(in.Shape) && len(shape) > 0 && shape[0] == 1 {
			shape = shape[1:]
		}
		if len(shape) != len(want) {
			return nil, fmt.Errorf("%s: sample shape %v does not fit model input %q of shape %v (a sample is %v)", where, t.Shape, in.Name, in.Shape, want)
		}
		for i, dm := range want {
			if dm.Known() && int64(shape[i]) != dm.Value {
				return nil, fmt.Errorf("%s: sample shape %v does not fit model input %q of shape %v (dim %d is %d, want %d)", where, t.Shape, in.Name, in.Shape, i+1, shape[i], dm.Value)
			}
		}
		if len(shape) != len(t.Shape) {
			t = &tensor.Tensor{DType: t.DType, Shape: append([]int(nil), shape...), Data: t.Data}
		}
	}
	if at, ok := firstNonFinite(t); ok {
		return nil, fmt.Errorf("%s: input %q: %w (element %d)", where, in.Name, errNonFinite, at)
	}
	return t, nil
}

func firstNonFinite(t *tensor.Tensor) (int, bool) {
	switch x := t.Data.(type) {
	case []float32:
		for i, v := range x {
			if v-v != 0 {
				return i, true
			}
		}
	case []float64:
		for i, v := range x {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return i, true
			}
		}
	case []float16.Float16:
		for i, v := range x {
			if v.IsNaN() || v.IsInf(0) {
				return i, true
			}
		}
	}
	return 0, false
}

// stack joins same-shaped samples along a new first axis.
func stack(ts []*tensor.Tensor) (*tensor.Tensor, error) {
	s0 := ts[0].Shape
	for _, t := range ts[1:] {
		if !tensor.SameShape(t.Shape, s0) {
			return nil, fmt.Errorf("samples of shapes %v and %v cannot share a batch", s0, t.Shape)
		}
	}
	out, err := tensor.New(ts[0].DType, append([]int{len(ts)}, s0...))
	if err != nil {
		return nil, err
	}
	dst := reflect.ValueOf(out.Data)
	per := ts[0].Len()
	for i, t := range ts {
		reflect.Copy(dst.Slice(i*per, (i+1)*per), reflect.ValueOf(t.Data))
	}
	return out, nil
}

// Permutation returns the first k entries of a uniformly random permutation
// of 0..n-1 determined by seed. It uses its own generator (SplitMix64) and
// an unbiased bounded draw, both integer-only, so the result is the same on
// every machine and Go version; the partial Fisher-Yates shuffle keeps only
// the k drawn positions, so memory is O(k) however large n is.
func Permutation(n, k int, seed uint64) []int {
	if k > n {
		k = n
	}
	state := seed
	next := func() uint64 {
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		return z ^ (z >> 31)
	}
	// bounded draws uniformly from [0, m) by rejection.
	bounded := func(m uint64) uint64 {
		limit := -m % m // 2^64 mod m
		for {
			v := next()
			if v >= limit {
				return v % m
			}
		}
	}
	swapped := map[int]int{}
	at := func(i int) int {
		if v, ok := swapped[i]; ok {
			return v
		}
		return i
	}
	out := make([]int, k)
	for i := 0; i < k; i++ {
		j := i + int(bounded(uint64(n-i)))
		vi, vj := at(i), at(j)
		out[i] = vj
		swapped[j] = vi
		delete(swapped, i)
	}
	return out
}
