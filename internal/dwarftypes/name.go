package dwarftypes

import "strings"

// goName returns a type's name as Go writes it, from the linker's. The
// linker names a type's DWARF after the symbol of its type descriptor
// (cmd/link/internal/ld/dwarf.go, newtype), whose name escapes the dots
// of the last element of a package's path ("gopkg.in/yaml%2ev3.Node",
// cmd/internal/objabi.PathToPrefix) and marks a type compiled without
// equality and hash functions "noalg." (the groups of a map, closures;
// cmd/compile/internal/types.TypeSymName). The other escapes of
// PathToPrefix, of '%', '"', spaces and non-ASCII bytes in a path, are
// left: undoing them could change a struct tag in an unnamed struct's
// name, which the compiler does not escape.
func goName(name string) string {
	name = strings.ReplaceAll(name, "%2e", ".")
	const mark = "noalg."
	if !strings.Contains(name, mark) {
		return name
	}
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); {
		// The mark starts a type's name: the whole name, or one after
		// the punctuation of a composite type's. A package whose
		// path is "noalg" would lose its qualifier.
		if strings.HasPrefix(name[i:], mark) && (i == 0 || strings.IndexByte("*[]( ,;{", name[i-1]) >= 0) {
			i += len(mark)
			continue
		}
		b.WriteByte(name[i])
		i++
	}
	return b.String()
}
