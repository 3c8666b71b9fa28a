package eval

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
)

// Accuracy is a model's top-1 and top-5 accuracy (fractions) on the
// labeled samples.
type Accuracy struct {
	Top1 float64 `json:"top1"`
	Top5 float64 `json:"top5"`
}

// Summary is the whole-model comparison.
type Summary struct {
	Samples int `json:"samples"`
	// Labeled is the number of samples with a label; accuracies are over
	// those.
	Labeled int `json:"labeled"`
	// Classes is the size of the first output per sample (what top-k
	// ranks).
	Classes int       `json:"classes"`
	Float   *Accuracy `json:"float_accuracy,omitempty"`
	Quant   *Accuracy `json:"quant_accuracy,omitempty"`
	// Agreement is the fraction of samples where both models' top-1 agree.
	Agreement float64 `json:"top1_agreement"`
	// FloatMsPerSample and QuantMsPerSample are the models' mean wall time
	// per sample during the evaluation (at its batch size and threads;
	// 'qtool bench' measures latency properly).
	FloatMsPerSample float64 `json:"float_ms_per_sample"`
	QuantMsPerSample float64 `json:"quant_ms_per_sample"`
}

// Output is the error of one model output, quantized against float.
type Output struct {
	Name   string `json:"name"`
	SQNR   Float  `json:"sqnr_db"`
	Cosine Float  `json:"cosine"`
	MaxAbs Float  `json:"max_abs_error"`
}

// Layer is the error of one quantized activation against its float
// counterpart, accumulated over the samples.
type Layer struct {
	Name      string  `json:"name"`
	OpType    string  `json:"op_type"`
	SQNR      Float   `json:"sqnr_db"`
	Cosine    Float   `json:"cosine"`
	MaxAbs    Float   `json:"max_abs_error"`
	Elements  int64   `json:"elements"`
	NonFinite int64   `json:"non_finite,omitempty"`
	DType     string  `json:"dtype"`
	Scale     float32 `json:"scale"`
	ZeroPoint int32   `json:"zero_point"`
	// QMin and QMax bound what the quantized tensor can represent; Min
	// and Max are the float values seen; Clipped counts float values
	// outside [QMin, QMax].
	QMin    float64 `json:"qmin"`
	QMax    float64 `json:"qmax"`
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
	Clipped int64   `json:"clipped"`

	hist *fineHist
}

// Report is what Compare found, plus what the command knows about the
// files.
type Report struct {
	FloatModel string   `json:"float_model"`
	QuantModel string   `json:"quant_model"`
	FloatBytes int64    `json:"float_bytes,omitempty"`
	QuantBytes int64    `json:"quant_bytes,omitempty"`
	Data       string   `json:"data,omitempty"`
	Summary    Summary  `json:"summary"`
	Outputs    []Output `json:"outputs"`
	PerLayer   bool     `json:"per_layer"`
	// Layers are worst (lowest SQNR) first.
	Layers []Layer `json:"layers,omitempty"`
	// Unobserved are paired tensors the quantized run never produced
	// (e.g. a branch not taken) or whose shapes never matched.
	Unobserved []string `json:"unobserved,omitempty"`
	// Sensitivity ranks layers by what quantizing each alone costs.
	Sensitivity []Cost `json:"sensitivity,omitempty"`
	// MaxDrop are the models tried to meet the budget (a fraction of
	// top-1 accuracy, or of changed predictions without labels); the last
	// step is the answer when Met.
	MaxDrop *MaxDropResult `json:"max_drop,omitempty"`
}

// MaxDropResult is the outcome of the --max-drop search.
type MaxDropResult struct {
	Budget float64 `json:"budget"`
	Met    bool    `json:"met"`
	Steps  []Step  `json:"steps"`
	Config string  `json:"config,omitempty"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func pct(x float64) string { return fmt.Sprintf("%.2f%%", 100*x) }

func fmtDB(f Float) string {
	x := float64(f)
	switch {
	case math.IsInf(x, 1):
		return "inf"
	case math.IsInf(x, -1):
		return "-inf"
	case math.IsNaN(x):
		return "nan"
	}
	return fmt.Sprintf("%.2f", x)
}

// WriteText writes the human-readable summary and, with per-layer data,
// the table of layers worst first (at most maxLayers rows; 0 = all).
func (r *Report) WriteText(w io.Writer, maxLayers int) error {
	var b strings.Builder
	s := r.Summary
	fmt.Fprintf(&b, "float:     %s\nquantized: %s\n", r.FloatModel, r.QuantModel)
	if r.FloatBytes > 0 && r.QuantBytes > 0 {
		fmt.Fprintf(&b, "size:      %s -> %s (%.2fx the float size)\n", bytesStr(r.FloatBytes), bytesStr(r.QuantBytes), float64(r.QuantBytes)/float64(r.FloatBytes))
	}
	fmt.Fprintf(&b, "samples:   %d (%d labeled)\n", s.Samples, s.Labeled)
	if s.Float != nil && s.Quant != nil {
		fmt.Fprintf(&b, "top-1:     float %s  quantized %s  (drop %+.2f pt)\n", pct(s.Float.Top1), pct(s.Quant.Top1), 100*(s.Float.Top1-s.Quant.Top1))
		fmt.Fprintf(&b, "top-5:     float %s  quantized %s  (drop %+.2f pt)\n", pct(s.Float.Top5), pct(s.Quant.Top5), 100*(s.Float.Top5-s.Quant.Top5))
	}
	fmt.Fprintf(&b, "agreement: %s (top-1 of quantized equals top-1 of float)\n", pct(s.Agreement))
	if s.FloatMsPerSample > 0 && s.QuantMsPerSample > 0 {
		fmt.Fprintf(&b, "time:      float %.3g ms/sample, quantized %.3g ms/sample (%.2fx; during eval, see qtool bench)\n", s.FloatMsPerSample, s.QuantMsPerSample, s.FloatMsPerSample/s.QuantMsPerSample)
	}
	for _, o := range r.Outputs {
		fmt.Fprintf(&b, "output %s: SQNR %s dB  cosine %.6f  max abs error %.4g\n", o.Name, fmtDB(o.SQNR), float64(o.Cosine), float64(o.MaxAbs))
	}
	if r.PerLayer && len(r.Layers) > 0 {
		fmt.Fprintf(&b, "\nper layer (%d quantized tensors with a float counterpart, worst first):\n", len(r.Layers))
		nw := len("tensor")
		for _, l := range r.Layers {
			if len(l.Name) > nw {
				nw = len(l.Name)
			}
		}
		if nw > 48 {
			nw = 48
		}
		fmt.Fprintf(&b, "  %-*s  %-18s %9s %10s %11s %9s\n", nw, "tensor", "op", "SQNR dB", "cosine", "max abs err", "clipped")
		for i, l := range r.Layers {
			if maxLayers > 0 && i == maxLayers {
				fmt.Fprintf(&b, "  ... %d more (--json or --report for all)\n", len(r.Layers)-maxLayers)
				break
			}
			name := l.Name
			if len(name) > nw {
				name = "…" + name[len(name)-nw+1:]
			}
			clip := 0.0
			if l.Elements > 0 {
				clip = float64(l.Clipped) / float64(l.Elements)
			}
			fmt.Fprintf(&b, "  %-*s  %-18s %9s %10.6f %11.4g %8.3f%%\n", nw, name, l.OpType, fmtDB(l.SQNR), float64(l.Cosine), float64(l.MaxAbs), 100*clip)
		}
		if len(r.Unobserved) > 0 {
			fmt.Fprintf(&b, "  not compared (never produced with a matching shape): %s\n", strings.Join(r.Unobserved, ", "))
		}
	}
	if len(r.Sensitivity) > 0 {
		fmt.Fprintf(&b, "\nsensitivity (each layer quantized alone, the rest float; most costly first):\n")
		fmt.Fprintf(&b, "  %-40s %-18s %12s %10s %9s\n", "node", "op", "output SQNR", "agreement", "drop pt")
		for _, c := range r.Sensitivity {
			fmt.Fprintf(&b, "  %-40s %-18s %9s dB %10s %+9.2f\n", c.Node, c.OpType, fmtDB(c.OutputSQNR), pct(c.Agreement), 100*c.Drop)
		}
	}
	if m := r.MaxDrop; m != nil {
		fmt.Fprintf(&b, "\nmax drop %.2f pt:\n", 100*m.Budget)
		for _, st := range m.Steps {
			fmt.Fprintf(&b, "  %2d layers float: drop %+.2f pt, agreement %s, output SQNR %s dB\n", len(st.KeepFloat), 100*st.Cost.Drop, pct(st.Cost.Agreement), fmtDB(st.Cost.OutputSQNR))
		}
		if m.Met {
			last := m.Steps[len(m.Steps)-1]
			fmt.Fprintf(&b, "  budget met with %d layers float: %s\n", len(last.KeepFloat), strings.Join(last.KeepFloat, ", "))
			if m.Config != "" {
				fmt.Fprintf(&b, "  config -> %s\n", m.Config)
			}
		} else {
			fmt.Fprintf(&b, "  budget NOT met\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func bytesStr(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
