package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool/qtool/internal/calibrate"
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/npy"
	_ "github.com/qtool/qtool/internal/runtime/ops/all"
	"github.com/qtool/qtool/internal/tensor"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestAccumHandValues(t *testing.T) {
	var a Accum
	a.Add([]float32{3, 4}, []float32{3, 3})
	// signal 9+16 = 25, noise 1, dot 9+12 = 21, |got|² = 18.
	if !near(a.SQNR(), 10*math.Log10(25), 1e-12) {
		t.Errorf("SQNR %v, want %v", a.SQNR(), 10*math.Log10(25))
	}
	if !near(a.Cosine(), 21/math.Sqrt(25*18), 1e-12) {
		t.Errorf("cosine %v, want %v", a.Cosine(), 21/math.Sqrt(25*18))
	}
	if a.MaxAbs != 1 || a.N != 2 {
		t.Errorf("max abs %v n %d", a.MaxAbs, a.N)
	}
	// A second sample adds energies: signal 25+4, noise 1+4 (ref 2, got 0).
	a.Add([]float32{2}, []float32{0})
	if !near(a.SQNR(), 10*math.Log10(29.0/5), 1e-12) || a.MaxAbs != 2 {
		t.Errorf("after second sample: SQNR %v (want %v), max abs %v", a.SQNR(), 10*math.Log10(29.0/5), a.MaxAbs)
	}
	// Orthogonal vectors: cosine 0; SQNR of ref 1,0 vs got 0,1 is 10·log10(1/2).
	var o Accum
	o.Add([]float32{1, 0}, []float32{0, 1})
	if o.Cosine() != 0 || !near(o.SQNR(), 10*math.Log10(0.5), 1e-12) {
		t.Errorf("orthogonal: cosine %v SQNR %v", o.Cosine(), o.SQNR())
	}
}

func TestAccumEdges(t *testing.T) {
	var empty Accum
	if !math.IsNaN(empty.SQNR()) || !math.IsNaN(empty.Cosine()) {
		t.Errorf("empty: SQNR %v cosine %v, want NaN", empty.SQNR(), empty.Cosine())
	}
	var same Accum
	same.Add([]float32{1, -2, 0}, []float32{1, -2, 0})
	if !math.IsInf(same.SQNR(), 1) || same.Cosine() != 1 || same.MaxAbs != 0 {
		t.Errorf("identical: SQNR %v cosine %v max %v", same.SQNR(), same.Cosine(), same.MaxAbs)
	}
	var zeros Accum
	zeros.Add([]float32{0, 0}, []float32{0, 0})
	if !math.IsInf(zeros.SQNR(), 1) || zeros.Cosine() != 1 {
		t.Errorf("zeros: SQNR %v cosine %v", zeros.SQNR(), zeros.Cosine())
	}
	var zref Accum
	zref.Add([]float32{0, 0}, []float32{0, 1})
	if !math.IsInf(zref.SQNR(), -1) || zref.Cosine() != 0 {
		t.Errorf("zero reference: SQNR %v cosine %v", zref.SQNR(), zref.Cosine())
	}
	var nf Accum
	nf.Add([]float32{float32(math.NaN()), 3, float32(math.Inf(1))}, []float32{1, 3, 1})
	if nf.NonFinite != 2 || !math.IsInf(nf.SQNR(), 1) {
		t.Errorf("non-finite: counted %d, SQNR %v", nf.NonFinite, nf.SQNR())
	}
}

func TestTopK(t *testing.T) {
	nan := float32(math.NaN())
	for _, c := range []struct {
		x    []float32
		k    int
		want []int
	}{
		{[]float32{0.1, 0.7, 0.2}, 2, []int{1, 2}},
		{[]float32{5, 5, 1, 5}, 3, []int{0, 1, 3}}, // ties: lower index first
		{[]float32{nan, 1, 2}, 3, []int{2, 1}},     // NaN never ranks
		{[]float32{1, 2}, 5, []int{1, 0}},
		{nil, 1, []int{}},
	} {
		got := TopK(c.x, c.k)
		if len(got) != len(c.want) {
			t.Errorf("TopK(%v, %d) = %v, want %v", c.x, c.k, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("TopK(%v, %d) = %v, want %v", c.x, c.k, got, c.want)
				break
			}
		}
	}
}

func TestFloatJSON(t *testing.T) {
	in := []Float{1.5, Float(math.Inf(1)), Float(math.Inf(-1)), Float(math.NaN())}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `[1.5,"inf","-inf","nan"]` {
		t.Fatalf("marshal: %s", b)
	}
	var out []Float
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out[0] != 1.5 || !math.IsInf(float64(out[1]), 1) || !math.IsInf(float64(out[2]), -1) || !math.IsNaN(float64(out[3])) {
		t.Fatalf("unmarshal: %v", out)
	}
}

func scalarF(x float32) *tensor.Tensor { return tensor.FromFloat32([]int{}, []float32{x}) }

// tinyModels builds Y = Relu(X) in float and its QDQ form as convert
// writes it: X -> Q -> DQ -> X_dequantized -> Relu -> Y_float -> Q -> DQ -> Y,
// with scale 0.1 and zero point 0 (uint8) on both.
func tinyModels() (f, q *graph.Graph) {
	shape := graph.Shape{{Param: "N"}, {Value: 2}}
	fx := &graph.Value{Name: "X", DType: tensor.Float32, Shape: shape}
	fy := &graph.Value{Name: "Y", DType: tensor.Float32, Shape: shape}
	f = &graph.Graph{Name: "f", Inputs: []*graph.Value{fx}, Outputs: []*graph.Value{fy}, Opsets: map[string]int64{"": 13},
		Nodes: []*graph.Node{{Name: "relu", OpType: "Relu", Inputs: []*graph.Value{fx}, Outputs: []*graph.Value{fy}}}}

	q = &graph.Graph{Name: "q", Opsets: map[string]int64{"": 13}}
	nm := q.NewNamer()
	s := q.AddInitializer(nm, "scale", scalarF(0.1))
	z := q.AddInitializer(nm, "zero_point", &tensor.Tensor{DType: tensor.Uint8, Shape: []int{}, Data: []uint8{0}})
	val := func(name string, dt tensor.DType) *graph.Value {
		return &graph.Value{Name: name, DType: dt, Shape: shape}
	}
	x, xq, xdq := val("X", tensor.Float32), val("X_quantized", tensor.Uint8), val("X_dequantized", tensor.Float32)
	yf, yq, y := val("Y_float", tensor.Float32), val("Y_quantized", tensor.Uint8), val("Y", tensor.Float32)
	q.Inputs, q.Outputs = []*graph.Value{x}, []*graph.Value{y}
	q.Nodes = []*graph.Node{
		{Name: "xq", OpType: "QuantizeLinear", Inputs: []*graph.Value{x, s, z}, Outputs: []*graph.Value{xq}},
		{Name: "xdq", OpType: "DequantizeLinear", Inputs: []*graph.Value{xq, s, z}, Outputs: []*graph.Value{xdq}},
		{Name: "relu", OpType: "Relu", Inputs: []*graph.Value{xdq}, Outputs: []*graph.Value{yf}},
		{Name: "yq", OpType: "QuantizeLinear", Inputs: []*graph.Value{yf, s, z}, Outputs: []*graph.Value{yq}},
		{Name: "ydq", OpType: "DequantizeLinear", Inputs: []*graph.Value{yq, s, z}, Outputs: []*graph.Value{y}},
	}
	return f, q
}

func TestPairs(t *testing.T) {
	f, q := tinyModels()
	ps := Pairs(f, q)
	if len(ps) != 2 {
		t.Fatalf("pairs %+v", ps)
	}
	if ps[0].Float != "X" || ps[0].Quant != "X_dequantized" || ps[0].OpType != "input" ||
		ps[1].Float != "Y" || ps[1].Quant != "Y" || ps[1].OpType != "Relu" {
		t.Errorf("pairs %+v", ps)
	}
	lo, hi := ps[1].QRange()
	if !near(lo, 0, 1e-9) || !near(hi, 25.5, 1e-5) {
		t.Errorf("uint8 range with scale 0.1 zp 0: %v..%v, want 0..25.5", lo, hi)
	}
	i8 := Pair{Scale: 0.5, ZeroPoint: -28, DType: tensor.Int8}
	if lo, hi := i8.QRange(); lo != -50 || hi != 77.5 {
		t.Errorf("int8 range with scale 0.5 zp -28: %v..%v, want -50..77.5", lo, hi)
	}
}

// TestCompareHandValues: on X = [[0.05, 1], [-1, 0.3]] quantizing with scale
// 0.1 gives [[0, 1], [0, 0.3]] (0.5 rounds half to even, -1 clips to 0),
// so every figure can be written down.
func TestCompareHandValues(t *testing.T) {
	f, q := tinyModels()
	dir := t.TempDir()
	data := filepath.Join(dir, "x.npy")
	var buf bytes.Buffer
	if err := npy.Write(&buf, tensor.FromFloat32([]int{2, 2}, []float32{0.05, 1, -1, 0.3})); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(data, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := calibrate.Open([]calibrate.DataSpec{{Path: data}}, calibrate.InputSpecs(f), calibrate.Options{Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	// Labels: sample 0 is class 1 (both models say 1); sample 1 is class 0
	// (float says 1 = argmax(0, 0.3); quantized says 1 too).
	rep, err := Compare(context.Background(), f, q, ds, Options{Threads: 1, PerLayer: true, Labels: []int64{1, 0}})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Summary
	if s.Samples != 2 || s.Labeled != 2 || s.Classes != 2 || s.Agreement != 1 {
		t.Errorf("summary %+v", s)
	}
	if s.Float.Top1 != 0.5 || s.Quant.Top1 != 0.5 || s.Float.Top5 != 1 || s.Quant.Top5 != 1 {
		t.Errorf("accuracy float %+v quant %+v", *s.Float, *s.Quant)
	}
	// Y float = [0.05, 1, 0, 0.3], quantized [0, 1, 0, 0.3]:
	// signal 0.0025+1+0.09, noise 0.0025.
	wantY := 10 * math.Log10((0.0025+1+0.09)/0.0025)
	if got := float64(rep.Outputs[0].SQNR); !near(got, wantY, 1e-3) {
		t.Errorf("output SQNR %v, want %v", got, wantY)
	}
	// X: signal 0.0025+1+1+0.09, noise 0.0025+1.
	wantX := 10 * math.Log10((0.0025+1+1+0.09)/(0.0025+1))
	byName := map[string]Layer{}
	for _, l := range rep.Layers {
		byName[l.Name] = l
	}
	if l := byName["X"]; !near(float64(l.SQNR), wantX, 1e-3) || !near(float64(l.MaxAbs), 1, 1e-6) || l.Clipped != 1 || l.Elements != 4 {
		t.Errorf("layer X %+v, want SQNR %v, max abs 1, 1 clipped", l, wantX)
	}
	if l := byName["Y"]; !near(float64(l.SQNR), wantY, 1e-3) {
		t.Errorf("layer Y SQNR %v, want %v", l.SQNR, wantY)
	}
	if rep.Layers[0].Name != "X" {
		t.Errorf("worst first: %v first", rep.Layers[0].Name)
	}
	h := rep.Histogram("X", 16)
	var total int64
	for _, c := range h.Counts {
		total += c
	}
	if total+h.Under+h.Over != 4 || h.Min != -1 || !near(h.Max, 1, 1e-7) || h.QMin != 0 || !near(h.QMax, 25.5, 1e-5) {
		t.Errorf("histogram %+v", h)
	}

	var html bytes.Buffer
	if err := rep.WriteHTML(&html, h); err != nil {
		t.Fatal(err)
	}
	page := html.String()
	for _, want := range []string{"<svg", "qmax", ">X<"} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "http://", "https://", "src="} {
		if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("HTML is not self-contained: has %q", bad)
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Layers) != 2 || back.Summary.Quant.Top1 != 0.5 {
		t.Errorf("JSON round trip: %s", js.String())
	}

	// A label past the model's classes is the user's mistake.
	ds2, _ := calibrate.Open([]calibrate.DataSpec{{Path: data}}, calibrate.InputSpecs(f), calibrate.Options{})
	defer ds2.Close()
	_, err = Compare(context.Background(), f, q, ds2, Options{Labels: []int64{7, 0}})
	var ie *InputError
	if err == nil || !errors.As(err, &ie) {
		t.Errorf("label 7 of 2 classes: %v", err)
	}
}

// TestReportScreenshot checks a headless-Chromium screenshot of a report
// (make report-check renders one and sets QTOOL_REPORT_PNG): the page must
// not be blank, and the SVG plots must have been drawn, which shows as the
// histogram's bar colour and the quantized-range shading in the pixels.
func TestReportScreenshot(t *testing.T) {
	path := os.Getenv("QTOOL_REPORT_PNG")
	if path == "" {
		t.Skip("QTOOL_REPORT_PNG not set (make report-check sets it)")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	colours := map[[3]uint8]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8)}]++
		}
	}
	bar := colours[[3]uint8{0x45, 0x75, 0xb4}]
	shade := colours[[3]uint8{0xe0, 0xf0, 0xe0}]
	t.Logf("%s: %dx%d, %d distinct colours, %d bar pixels, %d shading pixels", path, b.Dx(), b.Dy(), len(colours), bar, shade)
	if len(colours) < 16 || bar < 200 || shade < 2000 {
		t.Errorf("the report looks blank or its plots were not drawn: %d colours, %d bar pixels, %d shading pixels", len(colours), bar, shade)
	}
}

// TestSensitivityAndMaxDrop: on X = [0.03, 0.04] (label 1) the float model
// is right and the QDQ one, which rounds both to 0, picks class 0: keeping
// the Relu float is the only way to meet a budget of 0.
func TestSensitivityAndMaxDrop(t *testing.T) {
	f, q := tinyModels()
	nodes := QuantizedNodes(q)
	if len(nodes) != 1 || nodes[0] != "relu" {
		t.Fatalf("quantized nodes %v, want [relu]", nodes)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "x.npy")
	var buf bytes.Buffer
	if err := npy.Write(&buf, tensor.FromFloat32([]int{1, 2}, []float32{0.03, 0.04})); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(data, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	open := func() (*calibrate.Dataset, error) {
		return calibrate.Open([]calibrate.DataSpec{{Path: data}}, calibrate.InputSpecs(f), calibrate.Options{})
	}
	built := 0
	variant := func(keep []string) (*graph.Graph, error) {
		built++
		if len(keep) == 1 && keep[0] == "relu" {
			return f, nil
		}
		if len(keep) != 0 {
			t.Errorf("variant asked to keep %v", keep)
		}
		return q, nil
	}
	o := Options{Labels: []int64{1}}
	costs, err := Sensitivity(context.Background(), f, nodes, map[string]string{"relu": "Relu"}, variant, open, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Alone, relu is the whole quantized model: drop 1, agreement 0.
	if len(costs) != 1 || costs[0].Node != "relu" || costs[0].OpType != "Relu" || costs[0].Drop != 1 || costs[0].Agreement != 0 {
		t.Errorf("costs %+v", costs)
	}
	steps, err := MaxDrop(context.Background(), f, []string{"relu"}, 0, variant, open, o, nil)
	if err != nil || len(steps) != 2 || steps[0].Cost.Drop != 1 || steps[1].Cost.Drop != 0 || len(steps[1].KeepFloat) != 1 {
		t.Errorf("max drop 0: %v %+v", err, steps)
	}
	// Nothing to keep float: the budget cannot be met.
	steps, err = MaxDrop(context.Background(), f, nil, 0, variant, open, o, nil)
	if !errors.Is(err, ErrBudget) || len(steps) != 1 {
		t.Errorf("no layers to keep: %v %+v", err, steps)
	}
	// Within a budget of the whole drop, the quantized model is the answer.
	steps, err = MaxDrop(context.Background(), f, []string{"relu"}, 1, variant, open, o, nil)
	if err != nil || len(steps) != 1 || len(steps[0].KeepFloat) != 0 {
		t.Errorf("max drop 1: %v %+v", err, steps)
	}
	if built != 5 {
		t.Errorf("%d variants built, want 5", built)
	}
}

// TestHistogramKeepsEdgeValues: values exactly at the ends of the quantized
// range (a Relu's zeros) land in the shown bars, not in "below the plot".
func TestHistogramKeepsEdgeValues(t *testing.T) {
	var ranges [][2]float64
	for _, p := range []Pair{{Scale: 0.24381173}, {Scale: 0.18610874}, {Scale: 0.00390625}, {Scale: 0.1, ZeroPoint: 33}} {
		lo, hi := p.QRange()
		ranges = append(ranges, [2]float64{lo, hi})
	}
	for i := 1; i < 200; i++ {
		p := Pair{Scale: float32(i) * 0.0137, ZeroPoint: int32(i % 7)}
		lo, hi := p.QRange()
		ranges = append(ranges, [2]float64{lo, hi})
	}
	for _, r := range ranges {
		h := newFineHist(r[0], r[1])
		h.add([]float32{float32(r[0]), float32(r[0]), float32(r[1]), float32((r[0] + r[1]) / 2)})
		c := h.coarse("t", 64)
		var in int64
		for _, n := range c.Counts {
			in += n
		}
		if in != 4 || c.Under != 0 || c.Over != 0 || len(c.Counts) > 64 || c.Lo > r[0]+1e-9 || c.Hi < r[1]-1e-9 {
			t.Errorf("range %v: %d in bars, under %d, over %d, %d bars over [%v, %v]", r, in, c.Under, c.Over, len(c.Counts), c.Lo, c.Hi)
		}
	}
}
