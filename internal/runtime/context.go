package runtime

import "sync"

// Context carries what a kernel needs besides its inputs: the thread budget.
// Kernels split work with Parallel so that results never depend on Threads:
// every output element is computed by exactly one goroutine, in the same
// order of operations whatever the split.
type Context struct {
	Threads int

	opts  *Options // the session's hooks (nil outside a session)
	frame *frame   // the running graph, for subgraphs' outer values

	pool   *bufPool  // the session's recycled buffers
	rs     *runState // buffer ownership of the running frame
	step   *step     // the node being run
	allocs []uintptr // buffers New handed out during this step
}

// Parallel runs fn over [0, n) split into at most Threads contiguous chunks,
// each at least grain items (grain < 1 counts as 1). It returns when all are
// done. With one thread or little work it calls fn(0, n) directly.
func (c *Context) Parallel(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	t := 1
	if c != nil && c.Threads > 1 {
		t = c.Threads
	}
	if max := (n + grain - 1) / grain; t > max {
		t = max
	}
	if t <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + t - 1) / t
	for lo := 0; lo < n; lo += chunk {
		hi := lo + chunk
		if hi > n {
			hi = n
		}
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, hi)
	}
	wg.Wait()
}
