package f32

import (
	"sync/atomic"

	"github.com/qtool/qtool/internal/simd/cpu"
)

var genericKernel = &kernel{
	name: "generic", mr: 4, nr: 4, mc: 128, kc: 512, nc: 1024,
	micro:   microGeneric4x4,
	dw:      [3]dwFunc{dwGeneric(1), dwGeneric(2), dwGeneric(4)},
	dwLanes: 8, gather2: gather2Generic, copyRows: copyRowsGeneric,
}

// kernels lists the available kernels best first; archKernels (per
// architecture file) prepends the assembly ones the CPU supports.
func kernels() []*kernel { return append(archKernels(), genericKernel) }

var current atomic.Pointer[kernel]

func init() {
	if !setISA(cpu.Forced()) {
		setISA("")
	}
}

// setISA selects the kernel for name ("" = best available; otherwise an ISA
// name as documented in internal/simd/cpu). A name the CPU cannot run falls
// to the best kernel below it. It reports whether name was recognised.
// Operands packed before a switch keep the kernel they were packed for.
func setISA(name string) bool {
	ks := kernels()
	if name == "" {
		current.Store(ks[0])
		return true
	}
	rank, ok := isaRank[name]
	if !ok {
		return false
	}
	for _, k := range ks {
		if isaRank[k.name] <= rank {
			current.Store(k)
			return true
		}
	}
	current.Store(genericKernel)
	return true
}

// isaRank orders ISA names so that a forced name selects the best kernel at
// or below it.
var isaRank = map[string]int{
	"generic": 0,
	"asimd":   1, "dotprod": 2, "i8mm": 3,
	"avx2": 10, "avxvnni": 11, "avx512": 20, "avx512vnni": 21,
}

func active() *kernel { return current.Load() }

// ISA returns the name of the kernel in use ("generic", "avx2", "avx512").
func ISA() string { return active().name }
