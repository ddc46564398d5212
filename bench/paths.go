package bench

// Generated call paths give a benchmark many distinct call stacks that both
// the hook and the Go runtime's own heap profile can see. Path id is the
// bijective base-16 numeral of id+1: its length (1 to 4 digits below 69904)
// sets how deep the path goes past a common trunk, and each digit picks one
// of sixteen distinct functions f0..f15 at that level. Distinct ids give
// distinct digit strings, so distinct sequences of return addresses: the
// stacks differ in depth and in the functions on them, as a real program's
// do. Every path first goes through trunkDepth frames of trunk, standing
// for a server's framework frames, so stacks are as deep as real ones.

const (
	// NumPaths is the number of distinct stacks the flush fixture uses.
	NumPaths = 6500
	// trunkDepth is the number of common frames below the varying part.
	trunkDepth = 16
)

// A pathFunc is one level of a path: digits holds the remaining levels, four
// bits each, left how many remain, i the leaf's argument.
type pathFunc func(digits uint64, left, i int, leaf func(int))

// pathFuncs is filled by init: a composite literal naming f0..f15 would be
// an initialization cycle, since each of them calls through pathFuncs.
var pathFuncs [16]pathFunc

func init() {
	pathFuncs = [16]pathFunc{f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15}
}

// CallPath calls leaf(i) from the deepest frame of path id, id >= 0. leaf
// should be a top-level function: a closure that captures variables may be
// allocated on the heap, which would add an allocation on a stack of its
// own.
func CallPath(id, i int, leaf func(int)) {
	digits, n := pathDigits(id)
	trunk(trunkDepth, digits, n, i, leaf)
}

// pathDigits returns the digits of path id, four bits each, and how many.
func pathDigits(id int) (digits uint64, n int) {
	for v := id + 1; v > 0; v = (v - 1) / 16 {
		digits |= uint64((v-1)%16) << (4 * n)
		n++
	}
	return digits, n
}

//go:noinline
func trunk(depth int, digits uint64, left, i int, leaf func(int)) {
	if depth == 0 {
		descend(digits, left, i, leaf)
		return
	}
	trunk(depth-1, digits, left, i, leaf)
}

// descend calls the function the next digit names, or the leaf at the end.
func descend(digits uint64, left, i int, leaf func(int)) {
	if left == 0 {
		leaf(i)
		return
	}
	pathFuncs[digits&15](digits>>4, left-1, i, leaf)
}

//go:noinline
func f0(digits uint64, left, i int, leaf func(int)) { descend(digits, left, i, leaf) }

//go:noinline
func f1(digits uint64, left, i int, leaf func(int)) { descend(digits, left, i, leaf) }

//go:noinline
func f2(digits uint64, left, i int, leaf func(int)) { descend(digits, left, i, leaf) }

//go:noinline
func f3(digits uint64, left, i int, leaf func(int)) { descend(digits, left, i, leaf) }

//go:noinline
func f4(digits uint64, left, i int, leaf func(int)) { descend(digits, left, i, leaf) }

//go:noinline
func f5(digits uint64, left, i int, leaf func(int)) { descend(digits, left, i, leaf) }

//go:noinline
func f6(digits uint64, left, i int, leaf func(int)) { descend(digits, left, i, leaf) }

//go:noinline
func f7(digits uint64, left, i int, leaf func(int)) { descend(digits, left, i, leaf) }

//go:noinline
func f8(digits uint64, left, i int, leaf func(int)) { descend(digits, left, i, leaf) }

//go:noinline
func f9(digits uint64, left, i int, leaf func(int)) { descend(digits, left, i, leaf) }

//go:noinline
func f10(digits uint64, left, i int, leaf func(int)) { descend(digits, left, i, leaf) }

//go:noinline
func f11(digits uint64, left, i int, leaf func(int)) { descend(digits, left, i, leaf) }

//go:noinline
func f12(digits uint64, left, i int, leaf func(int)) { descend(digits, left, i, leaf) }

//go:noinline
func f13(digits uint64, left, i int, leaf func(int)) { descend(digits, left, i, leaf) }

//go:noinline
func f14(digits uint64, left, i int, leaf func(int)) { descend(digits, left, i, leaf) }

//go:noinline
func f15(digits uint64, left, i int, leaf func(int)) { descend(digits, left, i, leaf) }

// Recurse calls fn from the bottom of a recursion depth frames deep, so
// that everything fn does runs with at least depth frames on the stack.
//
//go:noinline
func Recurse(depth int, fn func()) {
	if depth <= 1 {
		fn()
		return
	}
	Recurse(depth-1, fn)
}
