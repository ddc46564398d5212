package dwarftypes_test

import (
	"fmt"
	"reflect"

	"github.com/leakhunt/profiler/internal/dwarftypes"
)

// Example names the hops of a chain of references as a heap dump gives
// it: a global, the offset of the pointer in it, and in each object after
// it the offset of the pointer to the next. It has no output to check:
// what it prints depends on the executable it reads.
func Example() {
	x, err := dwarftypes.Open("/proc/self/exe")
	if err != nil {
		fmt.Println(err) // errors.Is(err, dwarftypes.ErrNoDWARF): name hops by offsets
		return
	}
	global, offsets := "main.registry", []uint64{16, 24, 40}

	typ, ok := x.Global(global)
	name := global
	for _, off := range offsets {
		path, pointee, found := typ.Field(off)
		if !ok || !found {
			fmt.Printf("[%s] +%d\n", name, off)
			break // the objects after have no type to start from
		}
		fmt.Printf("[%s] %s\n", name, path) // [main.registry] .all
		typ, name, ok = pointee, pointee.Name(), pointee.Kind() != reflect.Invalid
	}
}
