package basic

import (
	"math"
	"testing"
)

// TestExpf sweeps every 97th float32 in [-87.3, 88.7] (about 21 million
// values) and checks expf against float64 math.Exp rounded to float32.
func TestExpf(t *testing.T) {
	worst := 0.0
	check := func(x float32) {
		want := float32(math.Exp(float64(x)))
		got := expf(x)
		ulp := float64(math.Nextafter32(want, float32(math.Inf(1))) - want)
		if e := math.Abs(float64(got)-float64(want)) / ulp; e > worst {
			worst = e
			if e > 2 {
				t.Fatalf("expf(%v) = %v, want %v (%.1f ulp)", x, got, want, e)
			}
		}
	}
	for _, lim := range []float32{88.72283, -87.33654} {
		lo, hi := math.Float32bits(0), math.Float32bits(lim)
		for b := lo; b <= hi; b += 97 {
			check(math.Float32frombits(b))
		}
		check(lim)
	}
	for _, x := range []float32{0, 1, -1, 0.5, 88.7, -87.3, 1e-30, -1e-30} {
		check(x)
	}
	if v := expf(89); !math.IsInf(float64(v), 1) {
		t.Errorf("expf(89) = %v", v)
	}
	if v := expf(-200); v != 0 {
		t.Errorf("expf(-200) = %v", v)
	}
	if v := expf(float32(math.NaN())); v == v {
		t.Errorf("expf(NaN) = %v", v)
	}
	t.Logf("worst error %.2f ulp", worst)
}

func BenchmarkExpf(b *testing.B) {
	x := make([]float32, 4096)
	for i := range x {
		x[i] = float32(i%200)/10 - 10
	}
	y := make([]float32, len(x))
	b.Run("expf", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for j, v := range x {
				y[j] = expf(v)
			}
		}
	})
	b.Run("math.Exp", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for j, v := range x {
				y[j] = float32(math.Exp(float64(v)))
			}
		}
	})
}
