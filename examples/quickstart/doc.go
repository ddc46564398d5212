// Command quickstart is the README's quick start, as printed there: it
// profiles until Ctrl-C or SIGTERM, then returns from main, whose deferred
// Stop writes the final profile to ./heapprofiles.
package main
