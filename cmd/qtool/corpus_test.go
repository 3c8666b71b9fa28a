package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The hostile-input corpus (testdata/malformed, written by
// go run ./tools/malformed) through the real command line. Each case runs in
// a child process (this test binary re-executed, see TestMain) whose data
// segment (RLIMIT_DATA: heap and anonymous mappings; not RLIMIT_AS, which Go's
// address-space reservations trip at random) is capped at childMemory, so
// that an allocation sized from
// untrusted data before it is checked fails the case instead of passing
// unnoticed on a machine with memory to spare, and a panic is seen as the
// stack trace it prints rather than taking the whole test binary down.

const (
	childEnv    = "QTOOL_CORPUS_CHILD" // JSON list of arguments
	childMemory = 1 << 30
	maxChildRSS = 256 << 20
)

func TestMain(m *testing.M) {
	if args := os.Getenv(childEnv); args != "" {
		var argv []string
		if err := json.Unmarshal([]byte(args), &argv); err != nil {
			os.Stderr.WriteString("corpus child: " + err.Error() + "\n")
			os.Exit(99)
		}
		lim := syscall.Rlimit{Cur: childMemory, Max: childMemory}
		if err := syscall.Setrlimit(syscall.RLIMIT_DATA, &lim); err != nil {
			os.Stderr.WriteString("corpus child: setrlimit: " + err.Error() + "\n")
			os.Exit(99)
		}
		if len(argv) == 1 && argv[0] == selfTestAlloc {
			// What an allocation sized from a hostile header looks like.
			b := make([]byte, 2*childMemory)
			for i := range b {
				b[i] = 1
			}
			os.Exit(int(b[len(b)-1]) - 1)
		}
		os.Exit(run(argv))
	}
	os.Exit(m.Run())
}

const selfTestAlloc = "corpus-self-test-allocate-2GiB"

// The cap must stop a large allocation, or the corpus test proves nothing
// about memory.
func TestCorpusChildMemoryCap(t *testing.T) {
	r := runChild(t, t.TempDir(), selfTestAlloc)
	if r.code == 0 || !strings.Contains(r.stderr, "out of memory") {
		t.Fatalf("a 2 GiB allocation under the cap: exit %d, stderr %.200q", r.code, r.stderr)
	}
}

type childResult struct {
	code           int
	stdout, stderr string
	maxRSS         int64 // bytes
}

// runChild runs qtool with args in a child process under the memory cap.
func runChild(t *testing.T, dir string, args ...string) childResult {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv, _ := json.Marshal(args)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), childEnv+"="+string(argv), "QTOOL_THREADS=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	r := childResult{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss << 10
	}
	return r
}

// corpusCase is one command line of the corpus.
type corpusCase struct {
	name string
	args []string
	file string // must appear in the error line
	want string // a word naming the problem
}

func corpusDir(t *testing.T) string {
	d, err := filepath.Abs(filepath.Join("..", "..", "testdata", "malformed"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func readTSV(t *testing.T, path string, cols int) [][]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with go run ./tools/malformed)", err)
	}
	var rows [][]string
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != cols {
			t.Fatalf("%s: bad line %q", path, line)
		}
		rows = append(rows, f)
	}
	return rows
}

// corpusCases lists the model corpus (each file through inspect and one of
// the other commands that load models, in turn) and the command-line corpus.
func corpusCases(t *testing.T, out string) []corpusCase {
	m := corpusDir(t)
	d := filepath.Join(m, "cli")
	var cases []corpusCase
	others := [][]string{
		{"run", "MODEL", "--input", filepath.Join(d, "x12.npy"), "--output-dir", out},
		{"fuse", "MODEL", "-o", filepath.Join(out, "f.onnx")},
		{"calibrate", "MODEL", "--data", filepath.Join(d, "x12.npy"), "-o", filepath.Join(out, "t.json")},
		{"convert", "MODEL", "--dynamic", "-o", filepath.Join(out, "q.onnx")},
		{"quantize", "MODEL", "--data", filepath.Join(d, "samples.npy"), "-o", filepath.Join(out, "q.onnx")},
		{"bench", "MODEL", "--runs", "1", "--warmup", "0"},
	}
	for i, row := range readTSV(t, filepath.Join(m, "MANIFEST.tsv"), 2) {
		file, want := row[0], row[1]
		p := filepath.Join(m, file)
		cases = append(cases, corpusCase{"inspect/" + file, []string{"inspect", p}, file, want})
		o := others[i%len(others)]
		args := append([]string(nil), o...)
		args[1] = p
		cases = append(cases, corpusCase{o[0] + "/" + file, args, file, want})
	}
	for _, row := range readTSV(t, filepath.Join(d, "CLI.tsv"), 4) {
		a := strings.NewReplacer("$D", d, "$M", m, "$O", out).Replace(row[1])
		cases = append(cases, corpusCase{row[0], strings.Fields(a), row[2], row[3]})
	}
	return cases
}

// knownGaps are cases that do not yet meet the contract, with the reason.
// They must still exit without a panic or a multi-line message; the test
// fails when one starts to pass, so that the entry is removed.
var knownGaps = map[string]string{}

// knownCrashes are gaps where the child dies (the memory cap stops it)
// instead of exiting 2: allowed, logged, and an error once fixed.
var knownCrashes = map[string]string{}

func TestMalformedCorpusCLI(t *testing.T) {
	out := t.TempDir()
	cases := corpusCases(t, out)
	if len(cases) < 50 {
		t.Fatalf("corpus has %d cases, want at least 50", len(cases))
	}
	cli := filepath.Join(corpusDir(t), "cli")
	before := listTree(t, filepath.Dir(cli))
	var worstRSS int64
	var worst string
	for _, c := range cases {
		r := runChild(t, out, c.args...)
		if r.maxRSS > worstRSS {
			worstRSS, worst = r.maxRSS, c.name
		}
		problems := checkCase(c, r)
		// A refused command leaves nothing behind: no output, no temp file.
		if ents, _ := os.ReadDir(out); len(ents) > 0 {
			for _, e := range ents {
				problems = append(problems, "left "+e.Name()+" in the output folder")
				os.RemoveAll(filepath.Join(out, e.Name()))
			}
		}
		gap, isGap := knownGaps[c.name]
		if crash, ok := knownCrashes[c.name]; ok {
			if len(problems) == 0 {
				t.Errorf("%s: listed as a known crash (%s) but now meets the contract: remove it from knownCrashes", c.name, crash)
			} else if r.code == 0 {
				t.Errorf("%s: exit 0; stderr %q", c.name, r.stderr)
			} else {
				t.Logf("%s: known crash: %s (exit %d: %s)", c.name, crash, r.code, oneLine(r.stderr))
			}
			continue
		}
		switch {
		case isGap && len(problems) == 0:
			t.Errorf("%s: listed as a known gap (%s) but now meets the contract: remove it from knownGaps", c.name, gap)
		case isGap:
			t.Logf("%s: known gap: %s (%s)", c.name, gap, strings.Join(problems, "; "))
			if strings.Contains(r.stderr, "goroutine ") || strings.Count(r.stderr, "\n") > 1 {
				t.Errorf("%s: %v\nstderr: %s", c.name, c.args, r.stderr)
			}
		case len(problems) > 0:
			t.Errorf("%s: qtool %s\n  %s\n  stderr: %s", c.name, strings.Join(c.args, " "), strings.Join(problems, "\n  "), r.stderr)
		}
	}
	if after := listTree(t, filepath.Dir(cli)); strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Errorf("the corpus folder changed while the commands ran:\nbefore %v\nafter  %v", before, after)
	}
	t.Logf("%d cases; largest peak RSS %.0f MiB (%s)", len(cases), float64(worstRSS)/(1<<20), worst)
}

func checkCase(c corpusCase, r childResult) []string {
	var p []string
	if r.code != exitInput {
		p = append(p, "exit code "+strconv.Itoa(r.code)+", want 2")
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasSuffix(r.stderr, "\n") || !strings.HasPrefix(r.stderr, "qtool: ") {
		p = append(p, "stderr is not one 'qtool: ...' line")
	}
	if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
		p = append(p, "panic or stack trace")
	}
	// The data cap stops one huge allocation; this catches many medium ones
	// (and memory the cap does not count, such as mapped files).
	if r.maxRSS > maxChildRSS {
		p = append(p, "peak RSS "+strconv.FormatInt(r.maxRSS>>20, 10)+" MiB")
	}
	if !strings.Contains(r.stderr, c.file) {
		p = append(p, "error does not name "+c.file)
	}
	if !strings.Contains(r.stderr, c.want) {
		p = append(p, "error does not say "+c.want)
	}
	return p
}

func listTree(t *testing.T, root string) []string {
	var names []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if info, err := d.Info(); err == nil {
			rel, _ := filepath.Rel(root, p)
			names = append(names, rel+" "+strconv.Itoa(int(info.Size())))
		}
		return nil
	})
	sort.Strings(names)
	return names
}
