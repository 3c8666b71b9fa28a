package main

import (
	"errors"
	"strings"
	"testing"
)

type fakePeer struct {
	name    string
	ms      []float64 // returned in turn
	failRun int       // Run call (1-based) that fails; 0 = never
	calls   *[]string
	runs    int
}

func (p *fakePeer) Name() string { return p.name }

func (p *fakePeer) Load(v variant) error {
	*p.calls = append(*p.calls, "load"+p.name)
	return nil
}

func (p *fakePeer) Run(v variant, n int) ([]float64, error) {
	p.runs++
	*p.calls = append(*p.calls, p.name)
	if p.runs == p.failRun {
		return nil, errors.New("broken")
	}
	var out []float64
	for i := 0; i < n; i++ {
		out = append(out, p.ms[(p.runs+i)%len(p.ms)])
	}
	return out, nil
}

func TestInterleaveTakesTurnsAndDropsFailures(t *testing.T) {
	var calls []string
	a := &fakePeer{name: "A", ms: []float64{10, 30, 20}, calls: &calls}
	b := &fakePeer{name: "B", ms: []float64{5}, calls: &calls}
	c := &fakePeer{name: "C", ms: []float64{1}, failRun: 2, calls: &calls} // warm-up ok, first turn fails
	res, errs := interleave(variant{name: "m", kind: "float"}, []peer{a, b, c}, 2, 3, nil)
	want := "loadA A loadB B loadC C " + // load and warm up
		"A B C " + // turn 1: C fails
		"B A " + // turn 2 reversed, C dropped
		"A B" // turn 3
	if got := strings.Join(calls, " "); got != want {
		t.Errorf("calls\n %s\nwant\n %s", got, want)
	}
	if errs[2] == nil || errs[0] != nil || errs[1] != nil || len(res[0]) != 3 || len(res[1]) != 3 || len(res[2]) != 0 {
		t.Fatalf("res %v errs %v", res, errs)
	}
	pr := pairedRatios(res[0], res[1])
	if len(pr) != 3 || pr[0] != res[0][0]/5 {
		t.Errorf("paired ratios %v of %v", pr, res[0])
	}
}
