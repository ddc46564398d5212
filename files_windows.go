package profiler

import "syscall"

// Windows reports a full disk as ERROR_DISK_FULL, or ERROR_HANDLE_DISK_FULL
// for a write through an open handle (winerror.h). Package syscall names
// neither, and its ENOSPC is a number of Go's own that no Windows call
// returns.
const (
	errorHandleDiskFull syscall.Errno = 39
	errorDiskFull       syscall.Errno = 112
)

// diskFullErrors are the errors, matched with errors.Is, that say a disk
// has no room left.
var diskFullErrors = []error{errorDiskFull, errorHandleDiskFull}
