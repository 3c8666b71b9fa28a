// Command benchpeers times ResNet-18 and MobileNetV2 in qtool, ONNX Runtime
// (npm onnxruntime-node, tools/peers/ort.js) and, where installed,
// PyTorch, and prints one table of medians and ratios. It is what
// `make bench-float` (float only, qtool vs ONNX Runtime) and
// `make bench-peers` (float and int8, all peers) run.
//
// The machine is shared and noisy, so the peers take turns: each round
// runs every peer once per model (the order alternates between rounds), a
// run being a fresh warm-up plus --runs timed inferences whose median is
// that round's figure. A peer's figure is the median of its round medians,
// and ratios are of those figures.
//
// int8 models are what `qtool quantize` writes for each float model,
// calibrated on the input tensor stored next to it (one sample: enough to
// time, not to judge accuracy), cached under --work.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

type variant struct {
	name, kind string // "resnet18", "float"|"int8"
	path       string // ONNX file
}

type peer interface {
	Name() string
	// Time returns the median latency in ms of one warm-up + runs session.
	Time(v variant) (float64, error)
}

type config struct {
	runs, warmup, threads, rounds int
	verbose                       bool
}

func main() {
	var (
		qtoolBin    = flag.String("qtool", "bin/qtool", "qtool binary")
		ortScript   = flag.String("ort", "tools/peers/ort.js", "ONNX Runtime peer script")
		nodeBin     = flag.String("node", "node", "Node.js binary")
		python      = flag.String("python", "/usr/bin/python3", "Python with torch and torchvision for the PyTorch peer")
		torchScript = flag.String("torch-script", "tools/benchpeers/torch_bench.py", "the PyTorch peer's script")
		modelsDir   = flag.String("models", "", "folder with resnet18_fp32_opset13.onnx and mobilenet_v2_fp32_bnrecal_opset13.onnx (default: find ../shared/models/torchvision-random)")
		work        = flag.String("work", "bin/bench-models", "folder for the int8 models qtool quantize writes")
		int8        = flag.Bool("int8", false, "also time int8 models")
		torch       = flag.Bool("torch", false, "also time PyTorch when it is installed")
		goal        = flag.Float64("goal", 0, "print whether float qtool/ORT is at most this ratio (0: don't)")
		c           config
	)
	flag.IntVar(&c.runs, "runs", 21, "timed runs per peer per round (made odd so that every peer's median is one sample)")
	flag.IntVar(&c.warmup, "warmup", 5, "warm-up runs per peer per round")
	flag.IntVar(&c.threads, "threads", 1, "threads for every peer")
	flag.IntVar(&c.rounds, "rounds", 5, "rounds of interleaved peer runs")
	flag.BoolVar(&c.verbose, "v", false, "print every round's figures on stderr")
	flag.Parse()
	if c.runs < 1 || c.rounds < 1 || c.warmup < 0 || c.threads < 1 {
		fail(2, "benchpeers: --runs, --rounds and --threads must be at least 1, --warmup at least 0")
	}
	if c.runs%2 == 0 {
		c.runs++
	}
	dir := *modelsDir
	if dir == "" {
		var err error
		if dir, err = findUp(filepath.Join("shared", "models", "torchvision-random")); err != nil {
			fail(2, "benchpeers: %v (give --models)", err)
		}
	}
	var notes []string
	var variants []variant
	for _, m := range []struct{ name, file string }{
		{"resnet18", "resnet18_fp32_opset13.onnx"},
		{"mobilenet_v2", "mobilenet_v2_fp32_bnrecal_opset13.onnx"},
	} {
		p := filepath.Join(dir, m.file)
		if _, err := os.Stat(p); err != nil {
			fail(2, "benchpeers: %v", err)
		}
		variants = append(variants, variant{m.name, "float", p})
		if *int8 {
			q, err := quantized(*qtoolBin, p, filepath.Join(dir, "input_1x3x224x224.npy"), filepath.Join(*work, m.name+".int8.onnx"))
			if err != nil {
				notes = append(notes, fmt.Sprintf("%s int8 skipped: qtool quantize failed: %v", m.name, err))
				continue
			}
			variants = append(variants, variant{m.name, "int8", q})
		}
	}

	peers := []peer{&qtoolPeer{bin: *qtoolBin, c: c}, &ortPeer{node: *nodeBin, script: *ortScript, c: c}}
	if *torch {
		tp, err := startTorch(*python, *torchScript, c, dir)
		if err != nil {
			notes = append(notes, "PyTorch skipped: "+err.Error())
		} else {
			defer tp.Close()
			peers = append(peers, tp)
			notes = append(notes, "PyTorch int8 is its own eager-mode onednn quantization of the same architecture, not qtool's int8 graph")
		}
	}

	var logw io.Writer
	if c.verbose {
		logw = os.Stderr
	}
	res, errs := rounds(variants, peers, c.rounds, logw)

	fmt.Printf("batch 1, %d thread(s), %d rounds x %d runs (warm-up %d) per peer, peers interleaved; figure = median of the round medians, ms\n",
		c.threads, c.rounds, c.runs, c.warmup)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "model\tvariant\t"
	for _, p := range peers {
		head += p.Name() + "\t"
	}
	for _, p := range peers[1:] {
		head += "qtool/" + p.Name() + "\t"
	}
	fmt.Fprintln(tw, head)
	med := func(i, j int) float64 {
		if errs[i][j] != nil || len(res[i][j]) == 0 {
			return 0
		}
		return median(res[i][j])
	}
	var goalLines []string
	for i, v := range variants {
		line := v.name + "\t" + v.kind + "\t"
		for j := range peers {
			if m := med(i, j); m > 0 {
				line += fmt.Sprintf("%.2f\t", m)
			} else {
				line += "-\t"
			}
		}
		q := med(i, 0)
		for j := 1; j < len(peers); j++ {
			if m := med(i, j); m > 0 && q > 0 {
				line += fmt.Sprintf("%.2fx\t", q/m)
				if *goal > 0 && j == 1 && v.kind == "float" {
					verdict := "meets"
					if q/m > *goal {
						verdict = "MISSES"
					}
					pr := pairedRatios(res[i][0], res[i][j])
					goalLines = append(goalLines, fmt.Sprintf("%s float: qtool/ORT %.2fx %s the %.2fx goal (round by round %.2fx..%.2fx)",
						v.name, q/m, verdict, *goal, pr[0], pr[len(pr)-1]))
				}
			} else {
				line += "-\t"
			}
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	for i, v := range variants {
		for j, p := range peers {
			if errs[i][j] != nil {
				notes = append(notes, fmt.Sprintf("%s %s on %s failed: %v", v.name, v.kind, p.Name(), errs[i][j]))
			}
		}
	}
	if tp, ok := peers[len(peers)-1].(*torchPeer); ok && len(tp.diffs) > 0 {
		for _, name := range sortedKeys(tp.diffs) {
			notes = append(notes, fmt.Sprintf("PyTorch %s float output vs the exported model's: max abs diff %.2g (same weights)", name, tp.diffs[name]))
		}
	}
	for _, l := range goalLines {
		fmt.Println(l)
	}
	for _, n := range notes {
		fmt.Println("note:", n)
	}
}

// rounds times every variant on every peer, round after round, the peers'
// order reversed every other round so that none always runs right after
// another. res[variant][peer] holds the round medians; a peer that fails
// on a variant is not asked again (errs holds the failure).
func rounds(variants []variant, peers []peer, n int, log io.Writer) ([][][]float64, [][]error) {
	res := make([][][]float64, len(variants))
	errs := make([][]error, len(variants))
	for i := range res {
		res[i] = make([][]float64, len(peers))
		errs[i] = make([]error, len(peers))
	}
	for r := 0; r < n; r++ {
		for i, v := range variants {
			for k := range peers {
				j := k
				if r%2 == 1 {
					j = len(peers) - 1 - k
				}
				if errs[i][j] != nil {
					continue
				}
				ms, err := peers[j].Time(v)
				if err != nil {
					errs[i][j] = err
					continue
				}
				res[i][j] = append(res[i][j], ms)
				if log != nil {
					fmt.Fprintf(log, "round %d %s %s %s: %.3f ms\n", r+1, v.name, v.kind, peers[j].Name(), ms)
				}
			}
		}
	}
	return res, errs
}

// pairedRatios are a/b round by round: both ran in the same stretch of
// machine load, so their spread shows how far the load moved the ratio.
func pairedRatios(a, b []float64) []float64 {
	var out []float64
	for r := 0; r < len(a) && r < len(b); r++ {
		if b[r] > 0 {
			out = append(out, a[r]/b[r])
		}
	}
	sort.Float64s(out)
	return out
}

func fail(code int, format string, a ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(code)
}

func median(x []float64) float64 {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func sortedKeys(m map[string]float64) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

// findUp looks for rel in the working directory and its parents.
func findUp(rel string) (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(d, rel)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", fmt.Errorf("no %s above the working directory", rel)
		}
		d = up
	}
}

// quantized returns out, written by `qtool quantize` unless it is newer
// than both the float model and the qtool binary (a rebuilt quantizer
// may write a different model).
func quantized(qtool, model, data, out string) (string, error) {
	if st, err := os.Stat(out); err == nil {
		fresh := true
		for _, dep := range []string{model, qtool} {
			if ds, err := os.Stat(dep); err != nil || ds.ModTime().After(st.ModTime()) {
				fresh = false
			}
		}
		if fresh {
			return out, nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command(qtool, "quantize", model, "--data", data, "-o", out, "--quiet")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v: %s", err, lastLine(string(b)))
	}
	return out, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

type qtoolPeer struct {
	bin string
	c   config
}

func (p *qtoolPeer) Name() string { return "qtool" }

func (p *qtoolPeer) Time(v variant) (float64, error) {
	out, err := run(exec.Command(p.bin, "bench", v.path, "--runs", fmt.Sprint(p.c.runs), "--warmup", fmt.Sprint(p.c.warmup),
		"--threads", fmt.Sprint(p.c.threads), "--batch", "1", "--json", "--quiet"))
	if err != nil {
		return 0, err
	}
	var r struct {
		Models []struct {
			Latency struct {
				P50 float64 `json:"p50"`
			} `json:"latency_ms"`
		} `json:"models"`
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r.Models) != 1 || r.Models[0].Latency.P50 <= 0 {
		return 0, fmt.Errorf("qtool bench printed no latency: %q", lastLine(string(out)))
	}
	return r.Models[0].Latency.P50, nil
}

type ortPeer struct {
	node, script string
	c            config
}

func (p *ortPeer) Name() string { return "ORT" }

func (p *ortPeer) Time(v variant) (float64, error) {
	out, err := run(exec.Command(p.node, p.script, "bench", v.path, "--runs", fmt.Sprint(p.c.runs), "--warmup", fmt.Sprint(p.c.warmup),
		"--threads", fmt.Sprint(p.c.threads)))
	if err != nil {
		return 0, err
	}
	var r struct {
		P50 float64 `json:"p50_ms"`
	}
	if err := json.Unmarshal([]byte(lastLine(string(out))), &r); err != nil || r.P50 <= 0 {
		return 0, fmt.Errorf("ort.js printed no latency: %q", lastLine(string(out)))
	}
	return r.P50, nil
}

// run returns stdout, or an error with the last line of stderr.
func run(cmd *exec.Cmd) ([]byte, error) {
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %s", filepath.Base(cmd.Path), err, lastLine(stderr.String()))
	}
	return out, nil
}

// torchPeer talks to torch_bench.py, started once so that torch is
// imported once.
type torchPeer struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	c     config
	diffs map[string]float64
}

func startTorch(python, script string, c config, modelsDir string) (*torchPeer, error) {
	if err := exec.Command(python, "-c", "import torch, torchvision").Run(); err != nil {
		return nil, fmt.Errorf("%s cannot import torch and torchvision", python)
	}
	if _, err := os.Stat(script); err != nil {
		return nil, err
	}
	cmd := exec.Command(python, script, fmt.Sprint(c.threads), modelsDir)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &torchPeer{cmd: cmd, in: in, out: bufio.NewReader(out), c: c, diffs: map[string]float64{}}, nil
}

func (p *torchPeer) Name() string { return "PyTorch" }

func (p *torchPeer) Time(v variant) (float64, error) {
	req, _ := json.Marshal(map[string]any{"model": v.name, "variant": v.kind, "runs": p.c.runs, "warmup": p.c.warmup})
	if _, err := p.in.Write(append(req, '\n')); err != nil {
		return 0, err
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("torch_bench.py: %v", err)
	}
	var r struct {
		P50   float64  `json:"p50_ms"`
		Diff  *float64 `json:"max_abs_diff"`
		Error string   `json:"error"`
	}
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		return 0, fmt.Errorf("torch_bench.py: %q", strings.TrimSpace(line))
	}
	if r.Error != "" {
		return 0, errors.New(r.Error)
	}
	if r.Diff != nil {
		p.diffs[v.name] = *r.Diff
	}
	return r.P50, nil
}

func (p *torchPeer) Close() {
	p.in.Close()
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
	}
}
