package basic

import "math"

// expf is exp for float32 in float32 arithmetic: Cephes' expf (range
// reduction by ln 2 in two parts, a degree-6 polynomial), within 2 ulp of
// the correctly rounded result (TestExpf checks it against math.Exp). It is
// 3-5x faster than going through float64 math.Exp, which is what Sigmoid
// and Softmax spend their time on.
func expf(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > 88 || x < -87.33654:
		// Near overflow (2^n would need exponent 128) and below the
		// smallest normal float32: rare, take the float64 route.
		return float32(math.Exp(float64(x)))
	}
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
	)
	// Round x·log2(e) to an integer by adding and subtracting 1.5·2^23
	// (any rounding works: it only centres the reduced argument).
	const magic = 12582912
	n := x*log2e + magic
	n -= magic
	r := x - n*c1 - n*c2
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*r*r + r + 1
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}
