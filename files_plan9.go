package profiler

// diskFullErrors are the errors, matched with errors.Is, that say a disk
// has no room left. Plan 9 reports errors as strings, which vary with the
// file server; none is recognised, so a full disk fails the write like any
// other error.
var diskFullErrors []error
