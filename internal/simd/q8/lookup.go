package q8

// lookupKern holds, per ISA path, the kernel that applies a 256-entry table
// to n bytes (n > 0, any length; the kernels handle their own tails). nil
// means lookupGo. It is indexed by path rather than held in one variable
// so that QTOOL_ISA=avx2 on an AVX-512 machine runs the AVX2 kernel, as
// every other forced path does.
var lookupKern [numISA]func(dst, src *uint8, n int, table *[256]uint8)

// LookupU8 sets dst[i] = table[src[i]]: every elementwise 8-bit activation
// (sigmoid, hardswish, …) as the exact 256-entry table of its float function.
// dst may be src (in place).
func LookupU8(dst, src []uint8, table *[256]uint8) {
	if len(dst) < len(src) {
		panic("q8.LookupU8: dst shorter than src")
	}
	if len(src) == 0 {
		return
	}
	if k := lookupKern[active]; k != nil {
		k(&dst[0], &src[0], len(src), table)
		return
	}
	lookupGo(dst[:len(src)], src, table)
}

// lookupGo is the kernels' Go twin.
func lookupGo(dst, src []uint8, table *[256]uint8) {
	dst = dst[:len(src)]
	i := 0
	for ; i+8 <= len(src); i += 8 {
		s := src[i : i+8 : i+8]
		d := dst[i : i+8 : i+8]
		d[0], d[1], d[2], d[3] = table[s[0]], table[s[1]], table[s[2]], table[s[3]]
		d[4], d[5], d[6], d[7] = table[s[4]], table[s[5]], table[s[6]], table[s[7]]
	}
	for ; i < len(src); i++ {
		dst[i] = table[src[i]]
	}
}
