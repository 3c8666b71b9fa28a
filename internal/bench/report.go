package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// Report is what `qtool bench` prints (text) or writes (--json).
type Report struct {
	Threads int `json:"threads"`
	Batch   int `json:"batch"`
	Warmup  int `json:"warmup"`
	// Runs is the requested number of timed runs per model; 0 means the
	// loop ran until the median was stable within Tolerance.
	Runs      int           `json:"runs_requested"`
	Tolerance float64       `json:"stability_tolerance,omitempty"`
	Stable    bool          `json:"stable"`
	ElapsedS  float64       `json:"timed_seconds"`
	Host      Host          `json:"host"`
	Models    []ModelResult `json:"models"`
	// Comparison is set with two models: the second against the first.
	Comparison *Comparison `json:"comparison,omitempty"`
	// Memory is the process's; nil where /proc/self/status is missing.
	Memory *Memory `json:"memory,omitempty"`
}

// Host says where the figures were measured.
type Host struct {
	GoVersion string `json:"go"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CPUs      int    `json:"cpus"`
	CPU       string `json:"cpu,omitempty"`
}

// InputInfo describes one input fed to a model.
type InputInfo struct {
	Name   string `json:"name"`
	DType  string `json:"dtype"`
	Shape  []int  `json:"shape"`
	Source string `json:"source"` // "synthetic" or the file it was read from
}

// ModelResult holds one model's figures.
type ModelResult struct {
	Path   string      `json:"model"`
	Nodes  int         `json:"nodes"`
	Inputs []InputInfo `json:"inputs"`
	// Samples is the batch a run processes (throughput's numerator).
	Samples   int   `json:"samples_per_run"`
	Runs      int   `json:"runs"`
	LatencyMs Stats `json:"latency_ms"`
	// Throughput is samples per second at the median latency.
	Throughput float64 `json:"throughput_per_s"`
	// PeakActivationBytes is the runtime's largest live set of
	// intermediate tensors during the last run.
	PeakActivationBytes int64    `json:"peak_activation_bytes"`
	Profile             *Profile `json:"profile,omitempty"`
}

// Comparison relates the second model to the first (the baseline).
type Comparison struct {
	Baseline  string `json:"baseline"`
	Candidate string `json:"candidate"`
	// LatencyRatio is candidate median / baseline median (< 1: faster).
	LatencyRatio float64 `json:"latency_ratio"`
	// Speedup is baseline median / candidate median (> 1: faster).
	Speedup float64 `json:"speedup"`
}

// Compare relates b to the baseline a by their median latencies.
func Compare(a, b ModelResult) *Comparison {
	c := &Comparison{Baseline: a.Path, Candidate: b.Path}
	if a.LatencyMs.P50 > 0 && b.LatencyMs.P50 > 0 {
		c.LatencyRatio = b.LatencyMs.P50 / a.LatencyMs.P50
		c.Speedup = a.LatencyMs.P50 / b.LatencyMs.P50
	}
	return c
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as aligned tables.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\truns\tp50 ms\tp90 ms\tp99 ms\tmean ms\tsamples/s\tactivations\t")
	for _, m := range r.Models {
		l := m.LatencyMs
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.1f\t%s\t\n", filepath.Base(m.Path), m.Runs, l.P50, l.P90, l.P99, l.Mean, m.Throughput, Bytes(m.PeakActivationBytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	mode := fmt.Sprintf("%d runs", r.Runs)
	if r.Runs == 0 {
		st := "stable"
		if !r.Stable {
			st = "NOT stable: stopped by the run/time cap"
		}
		mode = fmt.Sprintf("until the median is stable within %.3g%% (%s)", 100*r.Tolerance, st)
	}
	fmt.Fprintf(w, "threads %d, batch %d, warm-up %d, %s, %.2f s timed; %s/%s, %d CPUs %s\n",
		r.Threads, r.Batch, r.Warmup, mode, r.ElapsedS, r.Host.OS, r.Host.Arch, r.Host.CPUs, r.Host.CPU)
	if len(r.Models) > 1 {
		fmt.Fprintln(w, "runs of the models were interleaved")
	}
	if c := r.Comparison; c != nil && c.LatencyRatio > 0 {
		word := "faster"
		x := c.Speedup
		if c.Speedup < 1 {
			word, x = "slower", 1/c.Speedup
		}
		fmt.Fprintf(w, "%s vs %s: latency ratio %.3f (%.2fx %s)\n", filepath.Base(c.Candidate), filepath.Base(c.Baseline), c.LatencyRatio, x, word)
	}
	if r.Memory != nil {
		fmt.Fprintf(w, "peak RSS %s (whole process: models, weights and runs), RSS now %s\n", Bytes(r.Memory.PeakRSS), Bytes(r.Memory.RSS))
	}
	for _, m := range r.Models {
		if m.Profile == nil {
			continue
		}
		p := m.Profile
		fmt.Fprintf(w, "\nprofile of %s: %.3f ms/run in nodes over %d runs\n", filepath.Base(m.Path), p.NodeMsTotal, p.Runs)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  op\tnodes\tms/run\t%\t")
		for _, o := range p.ByOp {
			fmt.Fprintf(tw, "  %s\t%d\t%.3f\t%.1f\t\n", o.Op, o.Nodes, o.MsPerRun, o.Percent)
		}
		fmt.Fprintln(tw, "\t\t\t\t")
		fmt.Fprintln(tw, "  slowest nodes\top\tms/run\t%\t")
		for _, n := range p.TopNodes {
			fmt.Fprintf(tw, "  %s\t%s\t%.3f\t%.1f\t\n", clip(n.Node, 48), n.Op, n.MsPerRun, n.Percent)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n+3:]
}

// Bytes formats a byte count with a binary unit.
func Bytes(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %siB", float64(b)/float64(div), strings.Split("K M G T P E", " ")[exp])
}
