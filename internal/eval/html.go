package eval

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
)

// WriteHTML writes the report as one self-contained HTML page (inline CSS
// and SVG, no scripts, fonts or images from elsewhere): the summary, the
// per-layer SQNR bars and the histogram h (nil: none).
func (r *Report) WriteHTML(w io.Writer, h *Histogram) error {
	data := struct {
		R      *Report
		Rows   [][2]string
		Bars   template.HTML
		Hist   template.HTML
		HistOf string
		Layers []Layer
	}{R: r, Layers: r.Layers}
	s := r.Summary
	add := func(k, v string) { data.Rows = append(data.Rows, [2]string{k, v}) }
	add("float model", r.FloatModel)
	add("quantized model", r.QuantModel)
	if r.FloatBytes > 0 && r.QuantBytes > 0 {
		add("size", fmt.Sprintf("%s → %s (%.2f× the float size)", bytesStr(r.FloatBytes), bytesStr(r.QuantBytes), float64(r.QuantBytes)/float64(r.FloatBytes)))
	}
	if r.Data != "" {
		add("data", r.Data)
	}
	add("samples", fmt.Sprintf("%d (%d labeled)", s.Samples, s.Labeled))
	if s.Float != nil && s.Quant != nil {
		add("top-1 accuracy", fmt.Sprintf("float %s, quantized %s (drop %+.2f pt)", pct(s.Float.Top1), pct(s.Quant.Top1), 100*(s.Float.Top1-s.Quant.Top1)))
		add("top-5 accuracy", fmt.Sprintf("float %s, quantized %s (drop %+.2f pt)", pct(s.Float.Top5), pct(s.Quant.Top5), 100*(s.Float.Top5-s.Quant.Top5)))
	}
	add("top-1 agreement", pct(s.Agreement))
	if s.FloatMsPerSample > 0 && s.QuantMsPerSample > 0 {
		add("time per sample", fmt.Sprintf("float %.3g ms, quantized %.3g ms (%.2f× faster; measured during eval, qtool bench measures latency)", s.FloatMsPerSample, s.QuantMsPerSample, s.FloatMsPerSample/s.QuantMsPerSample))
	}
	for _, o := range r.Outputs {
		add("output "+o.Name, fmt.Sprintf("SQNR %s dB, cosine %.6f, max abs error %.4g", fmtDB(o.SQNR), float64(o.Cosine), float64(o.MaxAbs)))
	}
	if r.PerLayer && len(r.Layers) > 0 {
		data.Bars = template.HTML(sqnrBars(r.Layers))
	}
	if h != nil {
		data.Hist = template.HTML(histogramSVG(h))
		data.HistOf = h.Tensor
	}
	return pageTmpl.Execute(w, data)
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"db":  fmtDB,
	"pct": pct,
	"pt":  func(x float64) string { return fmt.Sprintf("%+.2f pt", 100*x) },
	"f":   func(x Float) string { return fmt.Sprintf("%.6f", float64(x)) },
	"g":   func(x Float) string { return fmt.Sprintf("%.4g", float64(x)) },
	"clip": func(l Layer) string {
		if l.Elements == 0 {
			return "0"
		}
		return fmt.Sprintf("%.3f%%", 100*float64(l.Clipped)/float64(l.Elements))
	},
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>qtool eval: {{.R.QuantModel}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#1b1b1b;background:#fff}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}
td,th{border-bottom:1px solid #ddd;padding:3px 10px;text-align:left;white-space:nowrap}
th{background:#f0f3f7}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
svg{background:#fafbfc;border:1px solid #e3e6ea}
</style></head><body>
<h1>qtool eval</h1>
<h2>Summary</h2>
<table>{{range .Rows}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>{{end}}</table>
{{if .Bars}}<h2>Per-layer SQNR (quantized against float, worst first)</h2>
<p class="legend">SQNR in dB:<span style="background:#d73027"></span>&lt; 15<span style="background:#fc8d59"></span>15–25<span style="background:#91bfdb"></span>25–35<span style="background:#4575b4"></span>≥ 35</p>
{{.Bars}}{{end}}
{{if .Hist}}<h2>Float values of {{.HistOf}} and the quantized range</h2>
{{.Hist}}{{end}}
{{if .R.Sensitivity}}<h2>Sensitivity (each layer quantized alone, the rest float; most costly first)</h2>
<table><tr><th>node</th><th>op</th><th>output SQNR dB</th><th>top-1 agreement</th><th>top-1 drop</th></tr>
{{range .R.Sensitivity}}<tr><td>{{.Node}}</td><td>{{.OpType}}</td><td class="n">{{db .OutputSQNR}}</td><td class="n">{{pct .Agreement}}</td><td class="n">{{pt .Drop}}</td></tr>
{{end}}</table>{{end}}
{{with .R.MaxDrop}}<h2>Layers kept float for a drop of at most {{pt .Budget}}</h2>
<table><tr><th>layers float</th><th>top-1 drop</th><th>top-1 agreement</th><th>output SQNR dB</th></tr>
{{range .Steps}}<tr><td class="n">{{len .KeepFloat}}</td><td class="n">{{pt .Cost.Drop}}</td><td class="n">{{pct .Cost.Agreement}}</td><td class="n">{{db .Cost.OutputSQNR}}</td></tr>
{{end}}</table>
<p>{{if .Met}}Budget met{{if .Config}}; config written to {{.Config}}{{end}}.{{else}}Budget NOT met, even with every ranked layer float.{{end}}</p>{{end}}
{{if .Layers}}<h2>Per-layer table</h2>
<table><tr><th>tensor</th><th>op</th><th>SQNR dB</th><th>cosine</th><th>max abs error</th><th>scale</th><th>zero point</th><th>float range</th><th>quantized range</th><th>clipped</th></tr>
{{range .Layers}}<tr><td>{{.Name}}</td><td>{{.OpType}}</td><td class="n">{{db .SQNR}}</td><td class="n">{{f .Cosine}}</td><td class="n">{{g .MaxAbs}}</td><td class="n">{{.Scale}}</td><td class="n">{{.ZeroPoint}} ({{.DType}})</td><td class="n">{{printf "%.4g" .Min}} … {{printf "%.4g" .Max}}</td><td class="n">{{printf "%.4g" .QMin}} … {{printf "%.4g" .QMax}}</td><td class="n">{{clip .}}</td></tr>
{{end}}</table>{{end}}
</body></html>
`))

func esc(s string) string { return template.HTMLEscapeString(s) }

func sqnrColor(x float64) string {
	switch {
	case x < 15:
		return "#d73027"
	case x < 25:
		return "#fc8d59"
	case x < 35:
		return "#91bfdb"
	}
	return "#4575b4"
}

// sqnrBars draws one horizontal bar per layer, length proportional to its
// SQNR (infinite ones drawn full length and labelled "inf").
func sqnrBars(ls []Layer) string {
	const (
		rowH  = 16
		left  = 260
		plotW = 560
		top   = 24
	)
	maxDB := 0.0
	for _, l := range ls {
		if x := float64(l.SQNR); !math.IsInf(x, 0) && !math.IsNaN(x) && x > maxDB {
			maxDB = x
		}
	}
	maxDB = math.Ceil(maxDB/10)*10 + 10
	width := left + plotW + 70
	height := top + rowH*len(ls) + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`, width, height, width, height)
	for d := 0.0; d <= maxDB; d += 10 {
		x := left + d/maxDB*plotW
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ccc"/><text x="%.1f" y="%d" text-anchor="middle" fill="#555">%g dB</text>`, x, top-4, x, height-6, x, top-10, d)
	}
	for i, l := range ls {
		y := top + i*rowH
		x := float64(l.SQNR)
		label := fmtDB(l.SQNR)
		w := 0.0
		color := sqnrColor(x)
		switch {
		case math.IsInf(x, 1):
			w = plotW
			color = "#313695"
		case math.IsNaN(x) || x <= 0:
			w = 1
		default:
			w = math.Min(x/maxDB, 1) * plotW
		}
		name := l.Name
		if len(name) > 40 {
			name = "…" + name[len(name)-39:]
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, left-6, y+rowH-4, esc(name))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s (%s): %s dB</title></rect>`, left, y+2, w, rowH-4, color, esc(l.Name), esc(l.OpType), label)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#333">%s</text>`, float64(left)+w+4, y+rowH-4, label)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// histogramSVG draws the counts as bars on a linear axis, shades the
// quantized range and marks its ends.
func histogramSVG(h *Histogram) string {
	const (
		left, right = 60, 20
		top, bottom = 20, 50
		plotW       = 760
		plotH       = 260
	)
	width, height := left+plotW+right, top+plotH+bottom
	var mx int64
	for _, c := range h.Counts {
		if c > mx {
			mx = c
		}
	}
	if mx == 0 {
		mx = 1
	}
	span := h.Hi - h.Lo
	if !(span > 0) {
		span = 1
	}
	xOf := func(v float64) float64 { return left + (v-h.Lo)/span*plotW }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`, width, height, width, height)
	q0, q1 := math.Max(xOf(h.QMin), left), math.Min(xOf(h.QMax), left+plotW)
	if q1 > q0 {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#e0f0e0"/>`, q0, top, q1-q0, plotH)
	}
	bw := float64(plotW) / float64(len(h.Counts))
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		// Log scale: after a Relu most values sit in the zero bin, and a
		// linear axis would hide the tail that decides the range.
		bh := math.Log1p(float64(c)) / math.Log1p(float64(mx)) * plotH
		fmt.Fprintf(&b, `<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="#4575b4"><title>%d</title></rect>`, left+float64(i)*bw, top+plotH-bh, math.Max(bw-0.5, 0.5), bh, c)
	}
	for _, q := range []struct {
		v    float64
		name string
	}{{h.QMin, "qmin"}, {h.QMax, "qmax"}} {
		x := xOf(q.v)
		if x < left || x > left+plotW {
			continue
		}
		anchor := "middle"
		switch {
		case x < left+60:
			anchor = "start"
		case x > left+plotW-60:
			anchor = "end"
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#d73027" stroke-width="2" stroke-dasharray="5,3"/><text x="%.1f" y="%d" text-anchor="%s" fill="#d73027">%s %.4g</text>`, x, top, x, top+plotH, x, top-6, anchor, q.name, q.v)
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`, left, top+plotH, left+plotW, top+plotH)
	for i := 0; i <= 4; i++ {
		v := h.Lo + span*float64(i)/4
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#333">%.4g</text>`, xOf(v), top+plotH+16, v)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#333">counts on a log scale (largest bin %d); float min %.4g, max %.4g; below/above the plot: %d/%d; shaded: representable after quantization</text>`, left, top+plotH+38, mx, h.Min, h.Max, h.Under, h.Over)
	b.WriteString(`</svg>`)
	return b.String()
}
