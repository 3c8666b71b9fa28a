package calibrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/observe"
)

func smallMNIST(t *testing.T, n int, cfg Config, kind string) *Table {
	t.Helper()
	return calibRun{modelPath: shared(t, "models/mnist-8/mnist-8.onnx"), specs: []DataSpec{{Path: mnistNPY(t, n)}},
		cfg: cfg, kind: kind}.run(t)
}

// A table survives writing and reading byte for byte, and ReadTable
// refuses damaged tables naming the file and the tensor.
func TestTableRoundTripAndValidation(t *testing.T) {
	tab := smallMNIST(t, 20, Config{}, "")
	b, err := tab.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "t.json")
	os.WriteFile(p, b, 0o644)
	back, err := ReadTable(p)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := back.Marshal()
	if !bytes.Equal(b, b2) {
		t.Fatal("table changed in a write/read round trip")
	}
	// One line per tensor.
	if n := strings.Count(string(b), "\n"); n > len(tab.Tensors)+60 {
		t.Fatalf("%d lines for %d tensors", n, len(tab.Tensors))
	}
	name := tab.Tensors[3].Name
	for _, c := range []struct {
		what, old, new, want string
	}{
		{"version", `"version": 1`, `"version": 7`, "version 7 is not supported"},
		{"no version", `"version": 1,`, ``, "no version"},
		{"scale", `"scales":[`, `"scales":[-`, "scale[0] is -"},
		{"nan scale", `"scales":[`, `"scales":["nan",`, "scale"},
		{"zero point", fmt.Sprintf(`"zero_points":[%d`, tab.Tensors[3].ZeroPoints[0]), `"zero_points":[300`, "zero_point[0] is 300"},
		{"dtype", `"dtype":"uint8"`, `"dtype":"uint9"`, "dtype"},
		{"role", `"role":"activation"`, `"role":"magic"`, "unknown role"},
		{"unknown field", `"role":`, `"colour":1,"role":`, "unknown field"},
		{"sha", `"sha256": "`, `"sha256": "x`, "sha256"},
	} {
		s := string(b)
		// Damage the entry of one tensor (or the header).
		line := strings.Index(s, `{"name":"`+name+`"`)
		if c.what == "version" || c.what == "no version" || c.what == "sha" {
			line = 0
		}
		k := strings.Index(s[line:], c.old)
		if k < 0 {
			t.Fatalf("%s: %q not in the table", c.what, c.old)
		}
		bad := s[:line+k] + c.new + s[line+k+len(c.old):]
		if c.new == "" {
			bad = s[:line+k] + s[line+k+len(c.old):]
		}
		bp := filepath.Join(dir, "bad.json")
		os.WriteFile(bp, []byte(bad), 0o644)
		_, err := ReadTable(bp)
		if err == nil {
			t.Errorf("%s: no error", c.what)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, bp) || !strings.Contains(msg, c.want) || (line > 0 && c.what != "unknown field" && !strings.Contains(msg, name)) {
			t.Errorf("%s: error %q, want the file, %q and the tensor %q", c.what, msg, c.want, name)
		}
	}
}

// Merge refuses tables of different models and of different settings.
func TestMergeRefusals(t *testing.T) {
	a := smallMNIST(t, 10, Config{}, "")
	b := smallMNIST(t, 10, Config{}, "minmax")
	if _, err := Merge(a, b); err == nil || !strings.Contains(err.Error(), "incompatible") {
		t.Fatalf("histogram + minmax: %v", err)
	}
	c := smallMNIST(t, 10, Config{}, "")
	c.Model.SHA256 = strings.Repeat("0", 64)
	if _, err := Merge(a, c); err == nil || !strings.Contains(err.Error(), "different models") {
		t.Fatalf("different models: %v", err)
	}
	d := smallMNIST(t, 10, Config{Activation: ObserverSpec{Bins: 1024}}, "")
	if _, err := Merge(a, d); err == nil {
		t.Fatal("different bins merged")
	}
	m, err := Merge(a, smallMNIST(t, 10, Config{}, ""))
	if err != nil {
		t.Fatal(err)
	}
	if m.Dataset.Samples != 20 || m.Validate() != nil {
		t.Fatalf("merged %+v: %v", m.Dataset, m.Validate())
	}
}

// Op-type and tensor overrides pick the observers; "none" leaves a tensor
// out; unknown keys and tensors are errors.
func TestConfigOverrides(t *testing.T) {
	raw := map[string]any{
		"activation": map[string]any{"observer": "minmax"},
		"weight":     map[string]any{"observer": "minmax", "qscheme": "per_tensor_symmetric"},
		"op_types": []any{
			map[string]any{"op_type": "Relu", "observer": "moving_average"},
			map[string]any{"op_type": "MaxPool", "observer": "per_channel", "dtype": "qint8"},
		},
		"tensors": []any{
			map[string]any{"name": "Plus214_Output_0", "observer": "percentile", "percentile": 99.9},
			map[string]any{"name": "Input3", "observer": "none"},
		},
	}
	cfg, err := DecodeConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	tab := smallMNIST(t, 10, cfg, "")
	m, _ := model.Load(shared(t, "models/mnist-8/mnist-8.onnx"))
	producer := map[string]string{}
	for _, n := range m.Graph.Nodes {
		for _, v := range n.Outputs {
			producer[v.Name] = n.OpType
		}
	}
	if tab.Lookup("Input3") != nil {
		t.Error("Input3 is observed despite observer none")
	}
	if e := tab.Lookup("Plus214_Output_0"); e == nil || e.Observer.Kind != observe.KindPercentile || e.Observer.Config.Percentile != 99.9 {
		t.Errorf("Plus214_Output_0: %+v", e)
	}
	for _, e := range tab.Tensors {
		var want observe.Kind
		switch {
		case e.Name == "Plus214_Output_0":
			continue
		case e.Role == RoleWeight:
			want = observe.KindMinMax
			if e.QScheme != "per_tensor_symmetric" || e.DType != "int8" {
				t.Errorf("weight %s: %s %s", e.Name, e.DType, e.QScheme)
			}
		case producer[e.Name] == "Relu":
			want = observe.KindMovingAverageMinMax
		case producer[e.Name] == "MaxPool":
			want = observe.KindPerChannelMinMax
			if e.Axis == nil || *e.Axis != 1 || e.QScheme != "per_channel_affine" || len(e.Scales) < 2 {
				t.Errorf("MaxPool output %s: axis %v scheme %s, %d scales", e.Name, e.Axis, e.QScheme, len(e.Scales))
			}
		case e.Role == RoleActivation:
			want = observe.KindMinMax
		default:
			continue
		}
		if e.Observer.Kind != want {
			t.Errorf("%s (%s, %s): observer %s, want %s", e.Name, e.Role, producer[e.Name], e.Observer.Kind, want)
		}
	}
	if _, err := DecodeConfig(map[string]any{"activaton": map[string]any{}}); err == nil {
		t.Error("misspelt key accepted")
	}
	bad := Config{Tensors: []Override{{Name: "no_such_tensor", ObserverSpec: ObserverSpec{Observer: "minmax"}}}}
	mm, _ := model.Load(shared(t, "models/mnist-8/mnist-8.onnx"))
	if _, err := NewPlan(mm.Graph, bad, ""); err == nil || !strings.Contains(err.Error(), "no_such_tensor") {
		t.Errorf("unknown tensor: %v", err)
	}
	if _, err := NewPlan(mm.Graph, Config{}, "histogramm"); err == nil || !strings.Contains(err.Error(), "unknown observer") {
		t.Errorf("unknown kind: %v", err)
	}
}

// A cancelled calibration stops with the context's error.
func TestCancel(t *testing.T) {
	r := calibRun{modelPath: shared(t, "models/mnist-8/mnist-8.onnx"), specs: []DataSpec{{Path: mnistNPY(t, 50)}}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.try(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
}

// Damaged tables give errors, never panics.
func FuzzParseTable(f *testing.F) {
	a := &Table{Version: 1, Model: ModelInfo{Path: "m.onnx", SHA256: strings.Repeat("ab", 32)},
		Dataset: DatasetInfo{Samples: 2, Batches: 1}}
	for _, k := range []observe.Kind{observe.KindMinMax, observe.KindHistogram, observe.KindPerChannelMinMax, observe.KindNoop} {
		c := observe.Config{DType: 2, Scheme: 0, Bins: 8}
		if k == observe.KindPerChannelMinMax {
			c = observe.Config{DType: 3, Scheme: 3}
		}
		if k == observe.KindNoop {
			c = observe.Config{}
		}
		o, err := observe.New(k, c)
		if err != nil {
			f.Fatal(err)
		}
		if err := o.Observe([]float32{-1, 2, 3, 0.5}, []int{2, 2}); err != nil {
			f.Fatal(err)
		}
		e := &Entry{Name: string(k), Role: RoleActivation}
		if err := e.fill(o, 2); err != nil {
			f.Fatal(err)
		}
		a.Tensors = append(a.Tensors, e)
	}
	b, err := a.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	if _, err := ParseTable(b); err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := ParseTable(data)
		if err != nil {
			return
		}
		// What validates merges with itself and writes again.
		if _, err := Merge(tab, tab); err != nil && !strings.Contains(err.Error(), "tensor") {
			t.Fatalf("self-merge of a valid table: %v", err)
		}
		if _, err := tab.Marshal(); err != nil {
			t.Fatal(err)
		}
	})
}

// Per-channel mean/std that do not match the model's image channels are a
// config error found before any data is read.
func TestNewPlanMeanStdChannels(t *testing.T) {
	mm, err := model.Load(shared(t, "models/mnist-8/mnist-8.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	// MNIST takes [1, 1, 28, 28]: one channel.
	for _, c := range []struct {
		pp Preprocess
		ok bool
	}{
		{Preprocess{Mean: []float64{0.1, 0.2, 0.3}}, false},
		{Preprocess{Std: []float64{0.1, 0.2}}, false},
		{Preprocess{Mean: []float64{0.5}, Std: []float64{0.25}}, true},
		{Preprocess{}, true},
	} {
		pp := c.pp
		_, err := NewPlan(mm.Graph, Config{Preprocess: &pp}, "")
		if c.ok != (err == nil) {
			t.Errorf("%+v: %v", c.pp, err)
		}
		if err != nil && !strings.Contains(err.Error(), "takes 1 channels") {
			t.Errorf("%+v: %v does not say how many channels", c.pp, err)
		}
	}
}

// Observer and scheme (or dtype) written side by side that cannot both hold
// are refused; an inherited scheme is still reconciled with the observer.
func TestNewPlanContradictions(t *testing.T) {
	mm, err := model.Load(shared(t, "models/mnist-8/mnist-8.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg  Config
		want string // "" = accepted
	}{
		{Config{Activation: ObserverSpec{Observer: "minmax", QScheme: "per_channel_affine"}}, "contradicts"},
		{Config{Weight: ObserverSpec{Observer: "per_channel_minmax", QScheme: "per_tensor_affine"}}, "contradicts"},
		{Config{OpTypes: []Override{{OpType: "Conv", ObserverSpec: ObserverSpec{Observer: "moving_average_minmax", QScheme: "per_channel_symmetric"}}}}, "contradicts"},
		{Config{Activation: ObserverSpec{Observer: "histogram", DType: "int32"}}, "int32"},
		{Config{Activation: ObserverSpec{DType: "qint32"}}, "int32"}, // histogram is the activation default
		{Config{Activation: ObserverSpec{Observer: "entropy", DType: "qint32"}}, "int32"},
		// Accepted: consistent pairs, and minmax over the weights'
		// inherited per-channel scheme.
		{Config{Activation: ObserverSpec{Observer: "minmax", QScheme: "per_tensor_symmetric"}}, ""},
		{Config{Weight: ObserverSpec{Observer: "minmax"}}, ""},
		{Config{Activation: ObserverSpec{Observer: "minmax", DType: "int32"}}, ""},
	} {
		_, err := NewPlan(mm.Graph, c.cfg, "")
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.cfg, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v, want an error saying %q", c.cfg, err, c.want)
		}
	}
}
