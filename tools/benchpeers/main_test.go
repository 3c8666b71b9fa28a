package main

import (
	"errors"
	"strings"
	"testing"
)

type fakePeer struct {
	name  string
	ms    []float64 // returned in turn
	fail  bool
	calls *[]string
	n     int
}

func (p *fakePeer) Name() string { return p.name }

func (p *fakePeer) Time(v variant) (float64, error) {
	*p.calls = append(*p.calls, p.name+":"+v.name)
	if p.fail {
		return 0, errors.New("broken")
	}
	x := p.ms[p.n%len(p.ms)]
	p.n++
	return x, nil
}

func TestRoundsInterleaveAndSkipFailures(t *testing.T) {
	var calls []string
	a := &fakePeer{name: "A", ms: []float64{10, 30, 20}, calls: &calls}
	b := &fakePeer{name: "B", ms: []float64{5}, calls: &calls}
	bad := &fakePeer{name: "C", fail: true, calls: &calls}
	vs := []variant{{name: "m", kind: "float"}}
	res, errs := rounds(vs, []peer{a, b, bad}, 3, nil)
	if got := strings.Join(calls, " "); got != "A:m B:m C:m B:m A:m A:m B:m" {
		t.Errorf("calls %s: want A B C, then reversed without the failed C, then A B", got)
	}
	if errs[0][2] == nil || errs[0][0] != nil || len(res[0][0]) != 3 || len(res[0][1]) != 3 {
		t.Fatalf("res %v errs %v", res, errs)
	}
	if m := median(res[0][0]); m != 20 {
		t.Errorf("median %v, want 20", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("even median %v", m)
	}
	pr := pairedRatios(res[0][0], res[0][1])
	if len(pr) != 3 || pr[0] != 2 || pr[2] != 6 {
		t.Errorf("paired ratios %v", pr)
	}
}
