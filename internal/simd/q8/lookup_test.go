package q8

import (
	"math/rand"
	"testing"
)

// lookupPaths lists every path runnable here once (the fused/unfused split
// of paths does not concern LookupU8).
func lookupPaths(t testing.TB) []isa {
	var ps []isa
	for _, v := range paths(t) {
		if !v.noFused {
			ps = append(ps, v.p)
		}
	}
	return ps
}

// lookupTables returns the tables the tests run: random ones, the identity,
// constants (one kernel bug class is a lookup that returns the right row but
// the wrong half, which identity tables and random ones catch but constants
// do not; another is a stale accumulator, which constants catch), the
// reversal, and ones that differ from their neighbours only in single rows
// or the top bit.
func lookupTables(rnd *rand.Rand) map[string]*[256]uint8 {
	tabs := map[string]*[256]uint8{}
	add := func(name string, f func(i int) uint8) {
		var t [256]uint8
		for i := range t {
			t[i] = f(i)
		}
		tabs[name] = &t
	}
	for k := 0; k < 4; k++ {
		add("random"+string(rune('0'+k)), func(int) uint8 { return uint8(rnd.Intn(256)) })
	}
	add("identity", func(i int) uint8 { return uint8(i) })
	add("reverse", func(i int) uint8 { return uint8(255 - i) })
	add("zero", func(int) uint8 { return 0 })
	add("ff", func(int) uint8 { return 0xff })
	add("5a", func(int) uint8 { return 0x5a })
	add("topflip", func(i int) uint8 { return uint8(i) ^ 0x80 })
	add("row", func(i int) uint8 { return uint8(i >> 4) })
	add("row7only", func(i int) uint8 {
		if i>>4 == 7 {
			return 0xc3
		}
		return 0
	})
	add("row15only", func(i int) uint8 {
		if i>>4 == 15 {
			return 0x3c
		}
		return 0
	})
	return tabs
}

// checkLookup runs LookupU8 on the active path over src (copied into a
// buffer at offset off with guard bytes around it) and compares it with
// lookupGo bit for bit, out of place and in place; any byte written outside
// the n destination bytes fails the test.
func checkLookup(t *testing.T, what string, src []uint8, off int, tab *[256]uint8) {
	t.Helper()
	const guard = 71
	n := len(src)
	want := make([]uint8, n)
	lookupGo(want, src, tab)
	for _, inPlace := range []bool{false, true} {
		buf := make([]uint8, off+n+guard)
		for i := range buf {
			buf[i] = uint8(0xa5 ^ i)
		}
		dst := buf[off : off+n]
		s := src
		if inPlace {
			copy(dst, src)
			s = dst
		} else {
			// The source in a buffer of its own, at another alignment.
			sb := make([]uint8, n+(off+17)%64)
			s = sb[(off+17)%64:]
			copy(s, src)
		}
		LookupU8(dst, s, tab)
		for i := range dst {
			if dst[i] != want[i] {
				t.Fatalf("%s n=%d off=%d inPlace=%v: dst[%d] = %d, want %d (src %d)", what, n, off, inPlace, i, dst[i], want[i], src[i])
			}
		}
		for i, b := range buf {
			if (i < off || i >= off+n) && b != uint8(0xa5^i) {
				t.Fatalf("%s n=%d off=%d inPlace=%v: byte %d outside dst overwritten", what, n, off, inPlace, i-off)
			}
		}
	}
}

// TestLookupU8Paths compares LookupU8 on every path this machine runs with its Go
// twin (which is the definition: dst[i] = table[src[i]]): all 256 codes in
// order and shuffled under each table, every length 0..200 and two long runs
// at random alignments, in place and not, with guard bytes after dst.
func TestLookupU8Paths(t *testing.T) {
	rnd := rand.New(rand.NewSource(11))
	tabs := lookupTables(rnd)
	var all [256]uint8
	for i := range all {
		all[i] = uint8(i)
	}
	shuffled := all
	rnd.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	randomSrc := func(n int) []uint8 {
		s := make([]uint8, n)
		for i := range s {
			s[i] = uint8(rnd.Intn(256))
		}
		return s
	}
	for _, p := range lookupPaths(t) {
		t.Run(p.String(), func(t *testing.T) {
			withISA(t, variant{p: p}, func() {
				for name, tab := range tabs {
					checkLookup(t, name+"/all", all[:], 0, tab)
					checkLookup(t, name+"/shuffled", shuffled[:], 5, tab)
					// Each code repeated over a whole vector and more, so a
					// kernel that mixes up lanes shows on every code.
					for c := 0; c < 256; c += 17 {
						run := make([]uint8, 97)
						for i := range run {
							run[i] = uint8(c)
						}
						checkLookup(t, name+"/const", run, c%64, tab)
					}
				}
				for n := 0; n <= 200; n++ {
					for _, name := range []string{"random0", "identity", "5a"} {
						checkLookup(t, name, randomSrc(n), rnd.Intn(64), tabs[name])
					}
				}
				for off := 1; off < 64; off++ {
					checkLookup(t, "random1/unaligned", randomSrc(64+rnd.Intn(200)), off, tabs["random1"])
				}
				for _, n := range []int{4096 + 13, 12544 + 7} {
					for _, name := range []string{"random2", "topflip"} {
						checkLookup(t, name+"/long", randomSrc(n), rnd.Intn(64), tabs[name])
					}
				}
			})
		})
	}
}

// TestLookupU8Short checks LookupU8's argument contract: a longer dst is
// written only over len(src), a shorter one panics.
func TestLookupU8Short(t *testing.T) {
	var tab [256]uint8
	for i := range tab {
		tab[i] = uint8(i + 1)
	}
	dst := make([]uint8, 100)
	src := make([]uint8, 70)
	LookupU8(dst, src, &tab)
	for i, b := range dst {
		if want := uint8(0); i < 70 && b != 1 || i >= 70 && b != want {
			t.Fatalf("dst[%d] = %d", i, b)
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for dst shorter than src")
		}
	}()
	LookupU8(dst[:10], src, &tab)
}
