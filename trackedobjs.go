package profiler

import (
	"unsafe"
	"weak"
)

// A retainers profile needs the address of each tracked object it reports,
// which the live table does not key by: a tracked record's key is a sample
// id, since an address can hold a new object before the cleanup of the
// last one has run (hook.go, track). So each tracked record also keeps its
// object weakly. A weak pointer turns nil when the collector finds its
// object unreachable, before the object's memory can be reused, so an
// address read through one is that object's; and it holds nothing alive,
// so it changes no chain.

// setObject keeps obj, weakly, as the object of the tracked record k, if
// k was recorded (it was not if the table was full).
func (t *liveTable) setObject(k liveKey, obj weak.Pointer[byte]) {
	s := t.shard(hashKey(k))
	s.mu.Lock()
	if _, ok := s.live[k]; ok {
		s.objs[k] = obj
	}
	s.mu.Unlock()
}

// trackedObject is a tracked record whose object was reachable when it
// was listed, with the object's address then.
type trackedObject struct {
	obj  weak.Pointer[byte]
	addr uintptr
	stk  *stack
	heap uint32 // without trackedBit
	size int64
}

// trackedObjects lists the tracked records whose objects are reachable,
// with their addresses, groups' stacks, heaps and sizes.
func (t *liveTable) trackedObjects() []trackedObject {
	var out []trackedObject
	// As in snapshot: the group table's lock keeps the listed records'
	// groups from being recycled while they are read.
	t.groups.mu.Lock()
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, obj := range s.objs {
			g := t.groups.get(s.live[k].group)
			out = append(out, trackedObject{obj: obj, stk: g.stk, heap: g.heap, size: g.size})
		}
		s.mu.Unlock()
	}
	t.groups.mu.Unlock()
	// Outside the locks: Value may wait for a span to be swept.
	n := 0
	for _, o := range out {
		if p := o.obj.Value(); p != nil {
			o.addr = uintptr(unsafe.Pointer(p))
			out[n] = o
			n++
		}
	}
	return out[:n]
}

// stillAt reports whether o's object is reachable now, and so was at any
// time since it was listed: an unreachable object never becomes reachable
// again, and Go objects do not move.
func (o *trackedObject) stillAt() bool {
	p := o.obj.Value()
	return p != nil && uintptr(unsafe.Pointer(p)) == o.addr
}
