package calibrate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/observe"
	"github.com/qtool/qtool/internal/tensor"
)

// TableVersion is the format version this package writes and reads.
const TableVersion = 1

// maxTableBytes bounds the tables ReadTable accepts.
const maxTableBytes = 1 << 30

// Table is a calibration table: for each observed tensor, the observer
// (kind, settings, statistics) and the quantization parameters it gives.
//
// Consumers (convert) read Entry.DType/QScheme/Axis/Scales/ZeroPoints;
// Entry.Observer carries what Merge and re-derivation need.
type Table struct {
	Version int         `json:"version"`
	Model   ModelInfo   `json:"model"`
	Dataset DatasetInfo `json:"dataset"`
	Tensors []*Entry    `json:"tensors"`
}

// ModelInfo identifies the calibrated model file.
type ModelInfo struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// DatasetInfo says what data the statistics come from.
type DatasetInfo struct {
	// Samples is the number of samples observed (all parts for a merged
	// table); Batches the number of model runs.
	Samples   int `json:"samples"`
	Batches   int `json:"batches"`
	BatchSize int `json:"batch_size,omitempty"`
	// SkippedNonFinite counts samples skipped for NaN/Inf; Dropped the
	// samples left over after the last full batch of a fixed-batch model.
	SkippedNonFinite int          `json:"skipped_nonfinite"`
	Dropped          int          `json:"dropped,omitempty"`
	Limit            int          `json:"limit,omitempty"`
	Offset           int          `json:"offset,omitempty"`
	Shuffle          bool         `json:"shuffle,omitempty"`
	Seed             uint64       `json:"seed,omitempty"`
	Sources          []SourceInfo `json:"sources,omitempty"`
	// Parts are the datasets of the tables a merged table combines, in
	// merge order.
	Parts []DatasetInfo `json:"parts,omitempty"`
}

// Entry is one tensor of the table.
type Entry struct {
	Name   string `json:"name"`
	Role   string `json:"role"`
	OpType string `json:"op_type,omitempty"`
	Node   string `json:"node,omitempty"`
	// DType is the quantized type ("uint8", "int8", "int32"; "float16" for
	// a noop observer, whose entry has no scales).
	DType   string `json:"dtype"`
	QScheme string `json:"qscheme"`
	// Axis is the channel axis (non-negative) of per-channel entries.
	Axis       *int          `json:"axis,omitempty"`
	Scales     []observe.F32 `json:"scales,omitempty"`
	ZeroPoints []int32       `json:"zero_points,omitempty"`
	// Observer is the observer's state: kind, settings and statistics.
	Observer observe.State `json:"observer"`
}

// Lookup returns the entry of a tensor, or nil.
func (t *Table) Lookup(name string) *Entry {
	for _, e := range t.Tensors {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// PerChannel reports whether the entry has one scale per channel.
func (e *Entry) PerChannel() bool { return e.Axis != nil }

// ScalesF32 returns the scales as float32.
func (e *Entry) ScalesF32() []float32 {
	out := make([]float32, len(e.Scales))
	for i, s := range e.Scales {
		out[i] = float32(s)
	}
	return out
}

// FileSHA256 is the hex SHA-256 of a file's bytes.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %v", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Calibrate runs the plan over the dataset and returns the table. model
// identifies the model file the graph came from.
func Calibrate(ctx context.Context, g *graph.Graph, model ModelInfo, ds *Dataset, cfg Config, activationKind string, o RunOptions, info DatasetInfo) (*Table, error) {
	p, err := NewPlan(g, cfg, activationKind)
	if err != nil {
		return nil, err
	}
	st, err := p.Run(ctx, ds, o)
	if err != nil {
		return nil, err
	}
	info.Samples, info.Batches, info.SkippedNonFinite, info.Dropped = st.Samples, st.Batches, st.Skipped, st.Dropped
	info.BatchSize = ds.BatchSize()
	if info.Sources == nil {
		info.Sources = ds.Sources
	}
	return p.Table(model, info)
}

// Table builds the calibration table from the plan's observers. Tensors
// that were never produced (optional outputs a kernel did not compute) are
// left out; every other entry has finite qparams or the run fails.
func (p *Plan) Table(model ModelInfo, info DatasetInfo) (*Table, error) {
	t := &Table{Version: TableVersion, Model: model, Dataset: info}
	for _, tg := range p.targets {
		st := tg.obs.State()
		if st.Batches == 0 {
			continue
		}
		e := &Entry{Name: tg.v.Name, Role: tg.role, OpType: tg.opType, Node: tg.node}
		if err := e.fill(tg.obs, tg.rank); err != nil {
			return nil, err
		}
		t.Tensors = append(t.Tensors, e)
	}
	return t, nil
}

// fill sets the entry's observer state and the qparams derived from it.
func (e *Entry) fill(o observe.Observer, rank int) error {
	st := o.State()
	c := o.Config()
	e.DType, e.QScheme = c.DType.String(), c.Scheme.String()
	e.Axis = nil
	if perChannelKind(o.Kind()) {
		a := c.Axis
		if a < 0 && rank >= 0 {
			a += rank
		}
		e.Axis = &a
	}
	e.Scales, e.ZeroPoints = nil, nil
	sc, zp, err := o.QParams()
	switch {
	case errors.Is(err, observe.ErrNoQParams):
	case err != nil:
		return fmt.Errorf("tensor %q: %v", e.Name, err)
	default:
		e.Scales, e.ZeroPoints = make([]observe.F32, len(sc)), zp
		for i, s := range sc {
			if !(s > 0) || math.IsInf(float64(s), 0) {
				return fmt.Errorf("tensor %q: observer gave scale %v", e.Name, s)
			}
			e.Scales[i] = observe.F32(s)
		}
		st.Scales, st.ZeroPoints = e.Scales, zp
	}
	e.Observer = st
	return nil
}

// Marshal writes the table as JSON: the header indented, one line per
// tensor, so that tables diff line by line. The bytes depend only on the
// table's content.
func (t *Table) Marshal() ([]byte, error) {
	var b bytes.Buffer
	head := *t
	head.Tensors = nil
	hb, err := json.MarshalIndent(struct {
		Version int         `json:"version"`
		Model   ModelInfo   `json:"model"`
		Dataset DatasetInfo `json:"dataset"`
	}{head.Version, head.Model, head.Dataset}, "", "  ")
	if err != nil {
		return nil, err
	}
	b.Write(hb[:len(hb)-2]) // drop "\n}"
	b.WriteString(",\n  \"tensors\": [")
	for i, e := range t.Tensors {
		eb, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %v", e.Name, err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n    ")
		b.Write(eb)
	}
	b.WriteString("\n  ]\n}\n")
	return b.Bytes(), nil
}

// Write writes the table to w.
func (t *Table) Write(w io.Writer) error {
	b, err := t.Marshal()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// ReadTable reads and validates a calibration table file.
func ReadTable(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTableBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(data) > maxTableBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxTableBytes)
	}
	t, err := ParseTable(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return t, nil
}

// ParseTable decodes and validates a table.
func ParseTable(data []byte) (*Table, error) {
	var probe struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("not a calibration table (invalid JSON: %v)", err)
	}
	if probe.Version == nil {
		return nil, errors.New("not a calibration table (no version field)")
	}
	if *probe.Version != TableVersion {
		return nil, fmt.Errorf("calibration table version %d is not supported (this qtool reads version %d)", *probe.Version, TableVersion)
	}
	var t Table
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("calibration table: %v", err)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

// Validate checks the table's structure and every entry's qparams.
func (t *Table) Validate() error {
	if t.Version != TableVersion {
		return fmt.Errorf("calibration table version %d is not supported (want %d)", t.Version, TableVersion)
	}
	if len(t.Model.SHA256) != 64 || strings.Trim(t.Model.SHA256, "0123456789abcdef") != "" {
		return fmt.Errorf("model.sha256 %q is not a hex SHA-256", t.Model.SHA256)
	}
	if t.Dataset.Samples <= 0 {
		return fmt.Errorf("dataset.samples is %d", t.Dataset.Samples)
	}
	if len(t.Tensors) == 0 {
		return errors.New("the table has no tensors")
	}
	seen := map[string]bool{}
	for i, e := range t.Tensors {
		if e == nil {
			return fmt.Errorf("tensors[%d] is null", i)
		}
		if e.Name == "" {
			return fmt.Errorf("tensors[%d] has no name", i)
		}
		if seen[e.Name] {
			return fmt.Errorf("tensor %q appears twice", e.Name)
		}
		seen[e.Name] = true
		if err := e.validate(); err != nil {
			return fmt.Errorf("tensor %q: %v", e.Name, err)
		}
	}
	return nil
}

func (e *Entry) validate() error {
	switch e.Role {
	case RoleActivation, RoleWeight, RoleConstant:
	case "":
		return errors.New("missing role")
	default:
		return fmt.Errorf("unknown role %q", e.Role)
	}
	if e.DType == "" || e.QScheme == "" {
		return errors.New("missing dtype or qscheme")
	}
	o, err := observe.FromState(e.Observer)
	if err != nil {
		return fmt.Errorf("observer: %v", err)
	}
	c := o.Config()
	if e.Observer.Batches == 0 {
		return errors.New("observer saw no data")
	}
	dt, err := observe.ParseDType(e.DType)
	if err != nil {
		return err
	}
	if dt != c.DType {
		return fmt.Errorf("dtype %s but the observer's is %v", e.DType, c.DType)
	}
	qs, err := observe.ParseQScheme(e.QScheme)
	if err != nil {
		return err
	}
	if qs != c.Scheme {
		return fmt.Errorf("qscheme %s but the observer's is %v", e.QScheme, c.Scheme)
	}
	if _, _, err := o.QParams(); errors.Is(err, observe.ErrNoQParams) {
		if len(e.Scales) > 0 || len(e.ZeroPoints) > 0 {
			return fmt.Errorf("a %s observer has no qparams, but the entry has scales", o.Kind())
		}
		return nil
	}
	if len(e.Scales) == 0 {
		return errors.New("missing scales")
	}
	if len(e.Scales) != len(e.ZeroPoints) {
		return fmt.Errorf("%d scales but %d zero points", len(e.Scales), len(e.ZeroPoints))
	}
	if qs.PerChannel() {
		if e.Axis == nil || *e.Axis < 0 {
			return errors.New("per-channel entry without a non-negative axis")
		}
		if n := len(e.Observer.Min); n != len(e.Scales) {
			return fmt.Errorf("%d scales for %d channels", len(e.Scales), n)
		}
	} else {
		if e.Axis != nil {
			return errors.New("per-tensor entry with an axis")
		}
		if len(e.Scales) != 1 {
			return fmt.Errorf("per-tensor entry with %d scales", len(e.Scales))
		}
	}
	qmin, qmax, err := c.QuantRange()
	if err != nil {
		return err
	}
	for i, s := range e.Scales {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("scale[%d] is %v: scales must be positive and finite", i, float32(s))
		}
		if z := e.ZeroPoints[i]; z < qmin || z > qmax {
			return fmt.Errorf("zero_point[%d] is %d, outside %v's range [%d, %d]", i, z, dt, qmin, qmax)
		}
	}
	return nil
}

// Merge combines tables of the same model computed on different parts of
// the data (in separate processes or machines): every tensor's observer
// state is merged as if one observer had seen a's data then b's (exact for
// min/max; histograms within their resolution; see observe), and the
// qparams are derived again. Tables of different models, with different
// tensors or different observer settings are refused.
func Merge(a, b *Table) (*Table, error) {
	if a.Model.SHA256 != b.Model.SHA256 {
		return nil, fmt.Errorf("the tables are for different models (%s sha256 %.12s..., %s sha256 %.12s...)", a.Model.Path, a.Model.SHA256, b.Model.Path, b.Model.SHA256)
	}
	if len(a.Tensors) != len(b.Tensors) {
		return nil, fmt.Errorf("the tables observe different tensors (%d and %d): were they made with the same config?", len(a.Tensors), len(b.Tensors))
	}
	out := &Table{Version: TableVersion, Model: a.Model}
	byName := make(map[string]*Entry, len(b.Tensors))
	for _, e := range b.Tensors {
		byName[e.Name] = e
	}
	for _, ea := range a.Tensors {
		eb := byName[ea.Name]
		if eb == nil {
			return nil, fmt.Errorf("tensor %q is in one table only", ea.Name)
		}
		if ea.Role != eb.Role {
			return nil, fmt.Errorf("tensor %q: role %s in one table, %s in the other", ea.Name, ea.Role, eb.Role)
		}
		oa, err := observe.FromState(ea.Observer)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %v", ea.Name, err)
		}
		ob, err := observe.FromState(eb.Observer)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %v", ea.Name, err)
		}
		if err := oa.Merge(ob); err != nil {
			return nil, fmt.Errorf("tensor %q: incompatible settings: %v", ea.Name, err)
		}
		e := &Entry{Name: ea.Name, Role: ea.Role, OpType: ea.OpType, Node: ea.Node}
		if err := e.fill(oa, -1); err != nil {
			return nil, err
		}
		if ea.Axis != nil {
			// Written normalized against the data's rank.
			if eb.Axis == nil || *eb.Axis != *ea.Axis {
				return nil, fmt.Errorf("tensor %q: different channel axes", ea.Name)
			}
			ax := *ea.Axis
			e.Axis = &ax
		}
		out.Tensors = append(out.Tensors, e)
	}
	parts := func(d DatasetInfo) []DatasetInfo {
		if len(d.Parts) > 0 {
			return d.Parts
		}
		return []DatasetInfo{d}
	}
	out.Dataset = DatasetInfo{
		Samples:          a.Dataset.Samples + b.Dataset.Samples,
		Batches:          a.Dataset.Batches + b.Dataset.Batches,
		SkippedNonFinite: a.Dataset.SkippedNonFinite + b.Dataset.SkippedNonFinite,
		Dropped:          a.Dataset.Dropped + b.Dataset.Dropped,
		Parts:            append(append([]DatasetInfo{}, parts(a.Dataset)...), parts(b.Dataset)...),
	}
	if a.Dataset.BatchSize == b.Dataset.BatchSize {
		out.Dataset.BatchSize = a.Dataset.BatchSize
	}
	return out, nil
}

// DTypeOf parses an entry's dtype.
func (e *Entry) DTypeOf() (tensor.DType, error) { return observe.ParseDType(e.DType) }
