//go:build !amd64

package q8

func initArch() {}

func emulateAVXVNNI() bool { return false }

func hasPeak() bool { return false }

func peakVNNI512(iters int) {}
