//go:build race

package f32

// sync.Pool drops items at random under the race detector, so allocation
// counts mean nothing there.
const raceEnabled = true
