package profiler

import _ "unsafe" // for go:linkname

// The sampler's per-P countdowns need what sync.Pool uses for its per-P
// caches: pinning the goroutine to its P, which also keeps it from being
// preempted, and learning the P's id. The runtime keeps these two
// functions available to packages outside the standard library and
// promises not to change their signatures (go.dev/issue/67401, the
// comment on runtime.procPin). They reach no runtime data layout.
//
// Nothing may block between the two: a pinned goroutine cannot be
// descheduled.

//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()
