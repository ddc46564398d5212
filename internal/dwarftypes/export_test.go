package dwarftypes

// RuntimeTypes returns every type of x that has a type descriptor, for
// the tests to walk.
func (x *Index) RuntimeTypes() []Type {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.scanRuntimeTypes()
	types := make([]Type, len(x.rtypes))
	for i, rt := range x.rtypes {
		types[i] = Type{x: x, die: rt.die}
	}
	return types
}
