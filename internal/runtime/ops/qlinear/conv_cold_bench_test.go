package qlinear

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/qtool/qtool/internal/runtime"
)

// coldJunk is larger than the L3 (32 MB on Zen 4) with room to spare:
// writing it between runs evicts the previous run's weights and
// activations, as a model's other layers do.
var coldJunk []byte

// spinSink keeps the pause loop from being optimized away.
var spinSink uint64

// BenchmarkConvColdWeights runs ResNet-18's 3x3 convolutions (NHWC,
// com.microsoft QLinearConv with channels_last, one thread) back to back
// ("hot"), after a 20 ms scalar spin that evicts nothing ("pause"), and
// after writing 96 MB ("cold"), reporting the median run. The pause and the
// eviction are outside the timer, so run with a fixed count (-benchtime
// 100x): with a time target the testing package would run thousands.
//
// On the Zen 4 VM of the 2026-11 measurements the pause alone costs most of
// what the eviction does, on every shape, even 56x56x64 whose 37 KB of
// weights stay in L2 (layer4 7x7x512: hot 0.53, pause 0.60, cold 0.64 ms;
// 56x56x64: 0.54, 0.61, 0.68). In the q8 kernels neither re-reading the
// weights, image and output after the eviction nor prefetching each next
// weight panel into L2 during the current one recovered any of it, while
// one untimed run right before the timed one recovered all of it: the gap
// is not the weights' trip from DRAM.
func BenchmarkConvColdWeights(b *testing.B) {
	for _, mode := range []string{"hot", "pause", "cold"} {
		for _, s := range []struct{ hw, c, cout int }{{7, 512, 512}, {14, 256, 256}, {28, 128, 128}, {56, 64, 64}} {
			b.Run(fmt.Sprintf("%s/%dx%dx%d-%d", mode, s.hw, s.hw, s.c, s.cout), func(b *testing.B) {
				benchConvCold(b, s.hw, s.c, s.cout, mode)
			})
		}
	}
}

func benchConvCold(b *testing.B, hw, c, cout int, mode string) {
	const ks = 3
	if mode == "cold" && coldJunk == nil {
		coldJunk = make([]byte, 96<<20)
	}
	k, in := benchConvKernel(b, []int{1, hw, hw, c}, cout, ks, 1, true, 0.0003, 0)
	ctx := &runtime.Context{Threads: 1}
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		switch mode {
		case "cold":
			b.StopTimer()
			for j := 0; j < len(coldJunk); j += 64 {
				coldJunk[j]++
			}
			b.StartTimer()
		case "pause":
			b.StopTimer()
			spin := uint64(i)
			for t := time.Now(); time.Since(t) < 20*time.Millisecond; {
				for range 100 {
					spin = spin*6364136223846793005 + 1
				}
			}
			spinSink += spin
			b.StartTimer()
		}
		t0 := time.Now()
		if _, err := k.Run(ctx, in); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(t0))
	}
	slices.Sort(times)
	med := times[len(times)/2]
	ops := 2.0 * float64(cout*c*ks*ks) * float64(hw*hw)
	b.ReportMetric(float64(med.Nanoseconds())/1e6, "median_ms")
	b.ReportMetric(ops/med.Seconds()/1e9, "median_GOPS")
}
