//go:build !windows && !plan9

package profiler

import "syscall"

// diskFullErrors are the errors, matched with errors.Is, that say a disk
// has no room left.
var diskFullErrors = []error{syscall.ENOSPC}
