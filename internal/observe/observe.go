// Package observe holds the calibration observers (PyTorch 1.13's MinMax,
// MovingAverageMinMax, PerChannelMinMax, MovingAveragePerChannelMinMax,
// Histogram, Recording, Noop and Placeholder, plus Percentile and Entropy)
// and FakeQuantize.
//
// Observers are pure functions of the batches they see: no globals, no
// randomness, no threads of their own. Their state serializes to JSON (kind,
// settings and the statistics qparams are derived from) and merges, so that
// calibration can be split across processes and the parts combined.
//
// Where PyTorch defines the observer, the statistics and qparams reproduce
// torch 1.13's float32 arithmetic (goldens from tools/golden/torch_observers.py).
//
// An Observer is not safe for concurrent use: give each goroutine its own
// and Merge them. Observe rejects a batch holding NaN or Inf with
// ErrNonFinite and leaves the state as it was, so a caller may skip the
// batch and go on.
package observe

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/qtool/qtool/internal/tensor"
)

// Kind names an observer type. The strings are the calibration table's.
type Kind string

const (
	KindMinMax                        Kind = "minmax"
	KindMovingAverageMinMax           Kind = "moving_average_minmax"
	KindPerChannelMinMax              Kind = "per_channel_minmax"
	KindMovingAveragePerChannelMinMax Kind = "moving_average_per_channel_minmax"
	KindHistogram                     Kind = "histogram"
	KindPercentile                    Kind = "percentile"
	KindEntropy                       Kind = "entropy"
	KindRecording                     Kind = "recording"
	KindNoop                          Kind = "noop"
	KindPlaceholder                   Kind = "placeholder"
)

// Kinds lists every observer kind New accepts.
var Kinds = []Kind{KindMinMax, KindMovingAverageMinMax, KindPerChannelMinMax,
	KindMovingAveragePerChannelMinMax, KindHistogram, KindPercentile, KindEntropy,
	KindRecording, KindNoop, KindPlaceholder}

var (
	// ErrNoQParams is returned by QParams of observers that never produce
	// qparams: Noop (float16: the tensor stays float), Placeholder and
	// Recording. Config().DType says what the tensor becomes.
	ErrNoQParams = errors.New("observer has no qparams")
	// ErrEmpty is returned (with PyTorch's default scale 1, zero point 0)
	// by QParams when the observer has seen no data.
	ErrEmpty = errors.New("observer saw no data")
	// ErrNonFinite is returned by Observe when a batch holds NaN or ±Inf.
	// The observer's state is unchanged.
	ErrNonFinite = errors.New("NaN or Inf in observed data")
)

// Observer collects statistics of a tensor over batches and turns them into
// quantization parameters.
type Observer interface {
	Kind() Kind
	Config() Config
	// Observe updates the statistics with one batch: x in row-major order
	// with the given shape (per-channel observers need it to find the
	// channel axis; others only check len(x) against it). An empty batch is
	// ignored, as in PyTorch.
	Observe(x []float32, shape []int) error
	// QParams returns one scale and zero point per channel (one for
	// per-tensor schemes). With ErrEmpty the values are PyTorch's defaults.
	QParams() (scales []float32, zeroPoints []int32, err error)
	// Merge folds in another observer of the same kind and config, so that
	// the result is what one observer that saw both streams would hold
	// (exact for min/max; see each type for the others).
	Merge(other Observer) error
	// State returns a copy of the serializable state.
	State() State
	// Reset forgets all statistics.
	Reset()
	json.Marshaler
	json.Unmarshaler
}

// Config is the observer's settings: PyTorch's constructor arguments plus
// those of the observers PyTorch lacks. The zero value of a field means
// PyTorch's default where one exists.
type Config struct {
	DType       tensor.DType   // Uint8 = torch.quint8, Int8 = torch.qint8, Int32 = torch.qint32; Uint16, Int16 (see opts); Float16 (Noop)
	Scheme      tensor.QScheme // per-tensor or per-channel, affine or symmetric
	ReduceRange bool
	// QuantMin/QuantMax apply when HasRange is set (PyTorch's quant_min and
	// quant_max both given).
	QuantMin, QuantMax int32
	HasRange           bool
	Eps                float32 // 0: float32 machine epsilon
	// AveragingConstant is the moving-average weight of a new batch (0: 0.01).
	AveragingConstant float64
	// Axis is the channel axis of per-channel observers (negative counts
	// from the end, as Python indexing does).
	Axis int
	// Bins and UpsampleRate of the histogram-based observers (0: 2048, 128).
	Bins, UpsampleRate int
	// Percentile (in percent, 0: 99.99) of PercentileObserver.
	Percentile float64
	// Tails selects PercentileObserver's rule: false clips |x| at one
	// threshold (symmetric), true cuts (100-Percentile)/2 percent of the
	// mass from each tail separately.
	Tails bool
	// EntropyBins is EntropyObserver's number of quantized bins (0: 128,
	// TensorRT's and ONNX Runtime's num_quantized_bins).
	EntropyBins int
}

// opts is the qparams computation. PyTorch 1.13 has no 16-bit quantized
// dtypes; its observers reach 16 bits only through a custom range
// (quant_min=0, quant_max=65535 or -32768..32767). Uint16 and Int16 are
// that custom range made the default, so their qparams are exactly what
// torch's _calculate_qparams gives with it (a symmetric uint16 zero point
// is (0+65535)//2 = 32767, as torch's custom-range rule, not 32768).
func (c Config) opts() tensor.QParamsOpts {
	o := tensor.QParamsOpts{DType: c.DType, Scheme: c.Scheme, QuantMin: c.QuantMin, QuantMax: c.QuantMax,
		HasRange: c.HasRange, ReduceRange: c.ReduceRange, Eps: c.Eps}
	if !o.HasRange {
		switch c.DType {
		case tensor.Uint16:
			o.HasRange, o.QuantMin, o.QuantMax = true, 0, 65535
		case tensor.Int16:
			o.HasRange, o.QuantMin, o.QuantMax = true, -32768, 32767
		}
	}
	return o
}

// QuantRange is the integer range the qparams are chosen for (PyTorch's
// observer quant_min and quant_max).
func (c Config) QuantRange() (qmin, qmax int32, err error) { return tensor.QuantRange(c.opts()) }

func (c Config) averaging() float32 {
	if c.AveragingConstant == 0 {
		return 0.01
	}
	// torch multiplies a float32 tensor by the Python float: a float32 scalar.
	return float32(c.AveragingConstant)
}

func (c Config) bins() int {
	if c.Bins == 0 {
		return 2048
	}
	return c.Bins
}

func (c Config) upsample() int {
	if c.UpsampleRate == 0 {
		return 128
	}
	return c.UpsampleRate
}

// validate checks what PyTorch's constructors assert.
func (c Config) validate(k Kind) error {
	switch k {
	case KindNoop, KindPlaceholder, KindRecording:
		return nil
	}
	switch c.DType {
	case tensor.Uint8, tensor.Int8, tensor.Int32, tensor.Uint16, tensor.Int16:
	default:
		return fmt.Errorf("observer %s: dtype %v is not quint8, qint8, quint16, qint16 or qint32", k, c.DType)
	}
	if _, _, err := c.QuantRange(); err != nil {
		return fmt.Errorf("observer %s: %w", k, err)
	}
	if !(c.Eps >= 0) || math.IsInf(float64(c.Eps), 0) {
		return fmt.Errorf("observer %s: eps %v", k, c.Eps)
	}
	perChannel := k == KindPerChannelMinMax || k == KindMovingAveragePerChannelMinMax
	switch c.Scheme {
	case tensor.PerTensorAffine, tensor.PerTensorSymmetric:
		if perChannel {
			return fmt.Errorf("observer %s: qscheme %v is not per-channel", k, c.Scheme)
		}
	case tensor.PerChannelAffine, tensor.PerChannelSymmetric:
		if !perChannel {
			return fmt.Errorf("observer %s: qscheme %v is not per-tensor", k, c.Scheme)
		}
	default:
		return fmt.Errorf("observer %s: unsupported qscheme %v", k, c.Scheme)
	}
	// MinMaxObserver and PerChannelMinMaxObserver refuse this combination
	// (HistogramObserver does not check it).
	if c.Scheme.Symmetric() && c.ReduceRange && c.DType == tensor.Uint8 && k != KindHistogram &&
		k != KindPercentile && k != KindEntropy {
		return fmt.Errorf("observer %s: cannot reduce range for symmetric quantization for quint8", k)
	}
	if a := c.AveragingConstant; a < 0 || a > 1 || a != a {
		return fmt.Errorf("observer %s: averaging constant %v outside [0, 1]", k, a)
	}
	if c.Bins < 0 || c.Bins > 1<<20 || c.UpsampleRate < 0 || c.UpsampleRate > 1<<12 {
		return fmt.Errorf("observer %s: bins %d / upsample rate %d out of range", k, c.Bins, c.UpsampleRate)
	}
	if p := c.Percentile; p < 0 || p > 100 || p != p {
		return fmt.Errorf("observer %s: percentile %v outside [0, 100]", k, p)
	}
	if c.EntropyBins < 0 || c.EntropyBins > 1<<16 {
		return fmt.Errorf("observer %s: entropy bins %d", k, c.EntropyBins)
	}
	return nil
}

// ParseKind accepts the kind strings and PyTorch's class names
// (MinMaxObserver, HistogramObserver, ...).
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if strings.EqualFold(s, string(k)) {
			return k, nil
		}
	}
	switch strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "Observer")) {
	case "minmax":
		return KindMinMax, nil
	case "movingaverageminmax":
		return KindMovingAverageMinMax, nil
	case "perchannelminmax":
		return KindPerChannelMinMax, nil
	case "movingaverageperchannelminmax":
		return KindMovingAveragePerChannelMinMax, nil
	case "histogram":
		return KindHistogram, nil
	case "percentile":
		return KindPercentile, nil
	case "entropy", "kl":
		return KindEntropy, nil
	case "recording":
		return KindRecording, nil
	case "noop":
		return KindNoop, nil
	case "placeholder":
		return KindPlaceholder, nil
	}
	return "", fmt.Errorf("unknown observer %q", s)
}

// New returns an observer of the given kind. The config's unset fields take
// PyTorch's defaults; Noop defaults to float16.
func New(k Kind, c Config) (Observer, error) {
	if err := c.validate(k); err != nil {
		return nil, err
	}
	switch k {
	case KindMinMax, KindMovingAverageMinMax:
		return &MinMax{kind: k, cfg: c, min: float32(math.Inf(1)), max: float32(math.Inf(-1))}, nil
	case KindPerChannelMinMax, KindMovingAveragePerChannelMinMax:
		return &PerChannelMinMax{kind: k, cfg: c}, nil
	case KindHistogram, KindPercentile, KindEntropy:
		return newHistogram(k, c), nil
	case KindRecording:
		return &Recording{cfg: c}, nil
	case KindNoop:
		if c.DType == tensor.Undefined {
			c.DType = tensor.Float16
		}
		return &Passthrough{kind: k, cfg: c}, nil
	case KindPlaceholder:
		if c.DType == tensor.Undefined {
			c.DType = tensor.Float32
		}
		return &Passthrough{kind: k, cfg: c}, nil
	}
	return nil, fmt.Errorf("unknown observer kind %q", k)
}

// checkBatch validates len(x) against shape.
func checkBatch(x []float32, shape []int) error {
	n, err := tensor.NumElements(shape)
	if err != nil {
		return err
	}
	if n != len(x) {
		return fmt.Errorf("observe: %d values for shape %v (%d elements)", len(x), shape, n)
	}
	return nil
}

func sameConfig(a, b Observer) error {
	if a.Kind() != b.Kind() {
		return fmt.Errorf("merge: cannot merge a %s observer into a %s observer", b.Kind(), a.Kind())
	}
	if a.Config() != b.Config() {
		return fmt.Errorf("merge: %s observers with different settings (%+v vs %+v)", a.Kind(), a.Config(), b.Config())
	}
	return nil
}

// ---- JSON ----

var dtypeJSON = map[tensor.DType]string{tensor.Uint8: "quint8", tensor.Int8: "qint8", tensor.Int32: "qint32",
	tensor.Uint16: "quint16", tensor.Int16: "qint16",
	tensor.Float16: "float16", tensor.Float32: "float32"}

// State is an observer's serializable form: what it is, its settings, and
// the statistics its qparams are derived from. QParams are included for
// readers of the calibration table; FromState ignores them and re-derives.
type State struct {
	Kind   Kind   `json:"kind"`
	Config Config `json:"config"`
	// Batches counts the non-empty batches seen.
	Batches int64 `json:"batches"`
	// Min and Max: the running (or averaged) range, one per channel for
	// per-channel observers; for histogram observers the histogram's range.
	Min []F32 `json:"min,omitempty"`
	Max []F32 `json:"max,omitempty"`
	// FirstMin/FirstMax: the moving averages' first batch range (needed to
	// merge a later stream into an earlier one).
	FirstMin []F32 `json:"first_min,omitempty"`
	FirstMax []F32 `json:"first_max,omitempty"`
	// Histogram over [Min, Max] in Bins equal bins (float32 counts, as torch).
	Histogram []F32 `json:"histogram,omitempty"`
	// Recorded batches of a RecordingObserver.
	Recorded []Recorded `json:"recorded,omitempty"`
	// Derived, informational.
	Scales     []F32   `json:"scales,omitempty"`
	ZeroPoints []int32 `json:"zero_points,omitempty"`
}

// Recorded is one batch kept by a RecordingObserver.
type Recorded struct {
	Shape []int `json:"shape"`
	Data  []F32 `json:"data"`
}

// F32 is a float32 that JSON-encodes non-finite values as "inf", "-inf" and
// "nan" (JSON numbers cannot), and finite ones as the shortest decimal that
// round-trips to the same float32.
type F32 float32

func (f F32) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case v != v:
		return []byte(`"nan"`), nil
	case math.IsInf(v, 1):
		return []byte(`"inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-inf"`), nil
	}
	return json.Marshal(float32(f))
}

func (f *F32) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch strings.ToLower(s) {
		case "nan":
			*f = F32(math.NaN())
		case "inf", "+inf", "infinity":
			*f = F32(math.Inf(1))
		case "-inf", "-infinity":
			*f = F32(math.Inf(-1))
		default:
			return fmt.Errorf("bad float %q", s)
		}
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = F32(float32(v))
	return nil
}

func toF32(x []float32) []F32 {
	if x == nil {
		return nil
	}
	out := make([]F32, len(x))
	for i, v := range x {
		out[i] = F32(v)
	}
	return out
}

func fromF32(x []F32) []float32 {
	if x == nil {
		return nil
	}
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

type configJSON struct {
	DType             string  `json:"dtype,omitempty"`
	QScheme           string  `json:"qscheme,omitempty"`
	ReduceRange       bool    `json:"reduce_range,omitempty"`
	QuantMin          *int32  `json:"quant_min,omitempty"`
	QuantMax          *int32  `json:"quant_max,omitempty"`
	Eps               F32     `json:"eps,omitempty"`
	AveragingConstant float64 `json:"averaging_constant,omitempty"`
	Axis              int     `json:"ch_axis,omitempty"`
	Bins              int     `json:"bins,omitempty"`
	UpsampleRate      int     `json:"upsample_rate,omitempty"`
	Percentile        float64 `json:"percentile,omitempty"`
	Tails             bool    `json:"tails,omitempty"`
	EntropyBins       int     `json:"entropy_bins,omitempty"`
}

func (c Config) MarshalJSON() ([]byte, error) {
	j := configJSON{DType: dtypeJSON[c.DType], QScheme: c.Scheme.String(), ReduceRange: c.ReduceRange,
		Eps: F32(c.Eps), AveragingConstant: c.AveragingConstant, Axis: c.Axis, Bins: c.Bins,
		UpsampleRate: c.UpsampleRate, Percentile: c.Percentile, Tails: c.Tails, EntropyBins: c.EntropyBins}
	if j.DType == "" && c.DType != tensor.Undefined {
		j.DType = c.DType.String()
	}
	if c.HasRange {
		lo, hi := c.QuantMin, c.QuantMax
		j.QuantMin, j.QuantMax = &lo, &hi
	}
	return json.Marshal(j)
}

func (c *Config) UnmarshalJSON(b []byte) error {
	var j configJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*c = Config{ReduceRange: j.ReduceRange, Eps: float32(j.Eps), AveragingConstant: j.AveragingConstant,
		Axis: j.Axis, Bins: j.Bins, UpsampleRate: j.UpsampleRate, Percentile: j.Percentile, Tails: j.Tails,
		EntropyBins: j.EntropyBins}
	if j.DType != "" {
		dt, err := ParseDType(j.DType)
		if err != nil {
			return err
		}
		c.DType = dt
	}
	var err error
	if j.QScheme != "" {
		if c.Scheme, err = ParseQScheme(j.QScheme); err != nil {
			return err
		}
	}
	if (j.QuantMin == nil) != (j.QuantMax == nil) {
		return errors.New("observer config: quant_min and quant_max must be given together")
	}
	if j.QuantMin != nil {
		c.HasRange, c.QuantMin, c.QuantMax = true, *j.QuantMin, *j.QuantMax
	}
	return nil
}

// ParseDType accepts PyTorch's names (quint8, qint8, qint32, float16), the
// plain ONNX ones (uint8, int8, int32) and the 16-bit activation types
// (quint16/uint16, qint16/int16: ONNX Runtime's QUInt16/QInt16).
func ParseDType(s string) (tensor.DType, error) {
	switch strings.ToLower(strings.TrimPrefix(s, "torch.")) {
	case "quint8", "uint8":
		return tensor.Uint8, nil
	case "qint8", "int8":
		return tensor.Int8, nil
	case "qint32", "int32":
		return tensor.Int32, nil
	case "quint16", "uint16":
		return tensor.Uint16, nil
	case "qint16", "int16":
		return tensor.Int16, nil
	case "float16", "half", "fp16":
		return tensor.Float16, nil
	case "float32", "float", "fp32":
		return tensor.Float32, nil
	}
	return 0, fmt.Errorf("unknown observer dtype %q", s)
}

// ParseQScheme accepts PyTorch's qscheme names.
func ParseQScheme(s string) (tensor.QScheme, error) {
	switch strings.ToLower(strings.TrimPrefix(s, "torch.")) {
	case "per_tensor_affine":
		return tensor.PerTensorAffine, nil
	case "per_tensor_symmetric":
		return tensor.PerTensorSymmetric, nil
	case "per_channel_affine":
		return tensor.PerChannelAffine, nil
	case "per_channel_symmetric":
		return tensor.PerChannelSymmetric, nil
	}
	return 0, fmt.Errorf("unknown qscheme %q", s)
}

// FromState rebuilds an observer from its state.
func FromState(s State) (Observer, error) {
	o, err := New(s.Kind, s.Config)
	if err != nil {
		return nil, err
	}
	if err := o.(stateSetter).setState(s); err != nil {
		return nil, fmt.Errorf("observer %s: %w", s.Kind, err)
	}
	return o, nil
}

// Unmarshal reads an observer from its JSON state.
func Unmarshal(data []byte) (Observer, error) {
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("observer state: %w", err)
	}
	return FromState(s)
}

type stateSetter interface{ setState(State) error }

// marshalState adds the derived qparams to the state when they exist.
func marshalState(o Observer) ([]byte, error) {
	s := o.State()
	if sc, zp, err := o.QParams(); err == nil {
		s.Scales, s.ZeroPoints = toF32(sc), zp
	}
	return json.Marshal(s)
}

func unmarshalInto(o Observer, data []byte) error {
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	if s.Kind != o.Kind() {
		return fmt.Errorf("observer state: kind %q, want %q", s.Kind, o.Kind())
	}
	if err := s.Config.validate(s.Kind); err != nil {
		return err
	}
	return o.(stateSetter).setState(s)
}
