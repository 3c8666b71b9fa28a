package convert

import (
	"math"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

func TestDecodeConfigErrors(t *testing.T) {
	for _, c := range []struct {
		raw  map[string]any
		want string
	}{
		{map[string]any{"wieght": map[string]any{}}, `unknown field "wieght"`},
		{map[string]any{"weight": map[string]any{"dtype": "qint4"}}, "weight.dtype"},
		{map[string]any{"weight": map[string]any{"granularity": "per_row"}}, "weight.granularity"},
		{map[string]any{"activation": map[string]any{"dtype": "float16"}}, "activation.dtype"},
		{map[string]any{"activation": map[string]any{"observer": "per_channel_minmax"}}, "cannot calibrate activations"},
		{map[string]any{"activation": map[string]any{"observer": "magic"}}, "unknown observer"},
		{map[string]any{"weight": map[string]any{"scheme": "affine", "narrow_range": true}}, "narrow_range"},
		{map[string]any{"weight": map[string]any{"reduce_range": true, "narrow_range": true}}, "contradict"},
		{map[string]any{"mode": "int4"}, "mode"},
		{map[string]any{"bias": "int16"}, "bias"},
		{map[string]any{"op_types": []any{map[string]any{"name": "x"}}}, "needs op_type"},
		{map[string]any{"nodes": []any{map[string]any{"op_type": "Conv"}}}, "needs name"},
		{map[string]any{"exclude": map[string]any{"op_types": []any{"Conv"}}, "op_types": []any{map[string]any{"op_type": "Conv"}}}, "both excluded and configured"},
		{map[string]any{"exclude": map[string]any{"nodes": []any{"a*"}}, "nodes": []any{map[string]any{"name": "a*"}}}, "both excluded and configured"},
	} {
		_, err := DecodeConfig(c.raw)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one mentioning %q", c.raw, err, c.want)
		}
	}
	if _, err := DecodeConfig(nil); err != nil {
		t.Errorf("no section: %v", err)
	}
}

func TestResolveOrder(t *testing.T) {
	cfg, err := DecodeConfig(map[string]any{
		"weight":   map[string]any{"granularity": "per_channel"},
		"op_types": []any{map[string]any{"op_type": "MatMul", "weight": map[string]any{"granularity": "per_tensor"}}},
		"nodes": []any{
			map[string]any{"name": "head/*", "activation": map[string]any{"dtype": "qint8"}},
			map[string]any{"name": "head/fc?", "weight": map[string]any{"granularity": "per_channel"}},
		},
		"exclude": map[string]any{"op_types": []any{"Softmax"}, "nodes": []any{"*/skip"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		op, name   string
		perChannel bool
		act        tensor.DType
		excluded   bool
	}{
		{"Conv", "body/conv1", true, tensor.Uint8, false},
		{"MatMul", "body/mm", false, tensor.Uint8, false},
		{"MatMul", "head/mm", false, tensor.Int8, false},
		{"MatMul", "head/fc1", true, tensor.Int8, false}, // a later match wins
		{"Softmax", "head/softmax", true, tensor.Int8, true},
		{"Conv", "a/b/skip", true, tensor.Uint8, true}, // * spans slashes
	} {
		s := cfg.Resolve(&graph.Node{OpType: c.op, Name: c.name})
		if s.Weight.PerChannel() != c.perChannel || s.Activation.ActDType() != c.act || s.Excluded != c.excluded {
			t.Errorf("%s %s: per-channel %v act %v excluded %v", c.op, c.name, s.Weight.PerChannel(), s.Activation.ActDType(), s.Excluded)
		}
	}
}

func TestPresets(t *testing.T) {
	for name, mode := range map[string]string{"x86": ModeStatic, "arm": ModeStatic, "ort-default": ModeStatic, "dynamic": ModeDynamic, "fp16": ModeFP16} {
		c := loadPreset(t, name)
		if c.Mode != mode {
			t.Errorf("%s: mode %q, want %q", name, c.Mode, mode)
		}
	}
	x86, ort := loadPreset(t, "x86"), loadPreset(t, "ort-default")
	if !x86.Weight.PerChannel() || x86.Activation.Observer != "histogram" || x86.Activation.ActDType() != tensor.Uint8 {
		t.Errorf("x86: %+v", x86)
	}
	if ort.Weight.PerChannel() || ort.Activation.Observer != "minmax" || !*ort.Weight.NarrowRange {
		t.Errorf("ort-default: %+v", ort)
	}
	if loadPreset(t, "arm").Activation.ActDType() != tensor.Int8 {
		t.Errorf("arm: activations should be int8")
	}
}

// Bias: round(b / (sa*sw)) half to even in float32, per channel.
func TestQuantizeBias(t *testing.T) {
	b := tensor.FromFloat32([]int{4}, []float32{1, -1, 0.25, 2.5})
	q, scales := quantizeBias(b, 0.5, []float32{1, 1, 0.5, 1})
	want := []int32{2, -2, 1, 5}
	for i, v := range q.I32() {
		if v != want[i] {
			t.Errorf("bias[%d] = %d, want %d", i, v, want[i])
		}
	}
	if scales[2] != 0.25 {
		t.Errorf("scale[2] = %v", scales[2])
	}
	// 0.75/0.5 = 1.5 rounds to 2, 0.25/0.5 = 0.5 rounds to 0 (half to even).
	q, _ = quantizeBias(tensor.FromFloat32([]int{2}, []float32{0.75, 0.25}), 0.5, []float32{1})
	if q.I32()[0] != 2 || q.I32()[1] != 0 {
		t.Errorf("half-even: %v", q.I32())
	}
}

// Weights: per-channel symmetric qparams from each channel's range, ONNX
// rounding; narrow range for the ONNX Runtime preset.
func TestQuantizeWeight(t *testing.T) {
	w := tensor.FromFloat32([]int{2, 3}, []float32{-1, 0.5, 0.25, 2, -0.5, 1})
	q, err := quantizeWeight(w, 0, WeightSpec{DType: "qint8", Granularity: "per_channel", Scheme: "symmetric"})
	if err != nil {
		t.Fatal(err)
	}
	if q.axis != 0 || len(q.scales) != 2 || q.scales[0] != 1/127.5 || q.scales[1] != 2/127.5 {
		t.Fatalf("scales %v axis %d", q.scales, q.axis)
	}
	// ONNX QuantizeLinear: rne(x / scale) in float32, clamped.
	for i, x := range w.F32() {
		s := q.scales[i/3]
		want := math.RoundToEven(float64(x / s))
		want = math.Max(-128, math.Min(127, want))
		if got := q.data.I8()[i]; float64(got) != want {
			t.Errorf("w[%d] = %v -> %d, want %v", i, x, got, want)
		}
	}
	nr := true
	q, err = quantizeWeight(w, 0, WeightSpec{DType: "qint8", Granularity: "per_tensor", Scheme: "symmetric", NarrowRange: &nr})
	if err != nil {
		t.Fatal(err)
	}
	if q.axis != -1 || q.scales[0] != 2/float32(127) {
		t.Errorf("narrow per-tensor: %v", q.scales)
	}
	for _, v := range q.data.I8() {
		if v < -127 {
			t.Errorf("narrow range gave %d", v)
		}
	}
	bad := tensor.FromFloat32([]int{1, 2}, []float32{1, float32(math.Inf(1))})
	if _, err := quantizeWeight(bad, 0, WeightSpec{Granularity: "per_tensor"}); err == nil {
		t.Error("a weight with Inf was quantized")
	}
}
