// Command prog is the program whose DWARF the tests of dwarftypes read.
// It prints what the tests compare the DWARF with, a line for each, its
// fields separated by tabs: the address of main.main, which gives its
// load bias; the addresses of some type descriptors, by the names
// reflect gives them; and the offsets of fields, as the compiler lays
// them out. It imports little, so that building it as PIE, which
// compiles every package it imports anew, is quick.
package main

import (
	"os"
	"reflect"
	"strconv"
	"sync"
	"unsafe"

	"github.com/leakhunt/profiler/internal/dwarftypes/testdata/prog/dotted.v2"
)

type Conn struct {
	id  int
	buf []byte
}

type Inner struct {
	n     int
	buf   *[64]byte
	conns [2]*Conn
}

type Base struct {
	name string
	next *Base
}

type Pair[K comparable, V any] struct {
	key K
	val *V
}

type Session struct {
	Base
	id     int64
	conns  []*Conn
	inner  Inner
	arr    [4]*Conn
	byName map[string]*Conn
	any    any
	err    error
	ch     chan *Conn
	fn     func()
	pair   Pair[string, Conn]
	up     uintptr
	raw    unsafe.Pointer
	mu     sync.Mutex
	title  string
	grid   [2][3]*Conn
	recs   [3]Inner
}

var registry struct {
	mu     sync.Mutex
	byName map[string]*Session
	all    []*Session
	head   *Session
}

var (
	sessions [3]*Session
	pairs    []Pair[int, Session]
	current  *Session
	events   = make(chan *Conn, 1)
	anything any
)

// typeAddr returns the address of the type descriptor of v's dynamic
// type: an interface's first word.
func typeAddr(v any) uintptr {
	return (*[2]uintptr)(unsafe.Pointer(&v))[0]
}

func main() {
	s := &Session{id: 1, byName: map[string]*Conn{}, conns: []*Conn{{id: 1}}}
	registry.byName = map[string]*Session{"a": s}
	registry.all = append(registry.all, s)
	registry.head = s
	sessions[0] = s
	current = s
	pairs = append(pairs, Pair[int, Session]{1, s})
	events <- s.conns[0]
	anything = s
	dotted.Root = &dotted.Node{}

	writeLine("main", "main", reflect.ValueOf(main).Pointer())
	for _, v := range []any{
		Session{}, &Session{}, Conn{}, Inner{}, []*Conn{}, [4]*Conn{},
		map[string]*Conn{}, make(chan *Conn), Pair[int, Session]{}, func() {},
	} {
		writeLine("type", reflect.TypeOf(v).String(), typeAddr(v))
	}
	var z Session
	for name, off := range map[string]uintptr{
		"registry.byName": unsafe.Offsetof(registry.byName),
		"registry.all":    unsafe.Offsetof(registry.all),
		"registry.head":   unsafe.Offsetof(registry.head),
		"Session.next":    unsafe.Offsetof(z.next),
		"Session.conns":   unsafe.Offsetof(z.conns),
		"Session.inner":   unsafe.Offsetof(z.inner),
		"Inner.buf":       unsafe.Offsetof(z.inner.buf),
		"Inner.conns":     unsafe.Offsetof(z.inner.conns),
		"Session.arr":     unsafe.Offsetof(z.arr),
		"Session.byName":  unsafe.Offsetof(z.byName),
		"Session.any":     unsafe.Offsetof(z.any),
		"Session.err":     unsafe.Offsetof(z.err),
		"Session.ch":      unsafe.Offsetof(z.ch),
		"Session.fn":      unsafe.Offsetof(z.fn),
		"Session.pair":    unsafe.Offsetof(z.pair),
		"Pair.val":        unsafe.Offsetof(z.pair.val),
		"Session.up":      unsafe.Offsetof(z.up),
		"Session.raw":     unsafe.Offsetof(z.raw),
		"Session.mu":      unsafe.Offsetof(z.mu),
		"Session.title":   unsafe.Offsetof(z.title),
		"Session.grid":    unsafe.Offsetof(z.grid),
		"Session.recs":    unsafe.Offsetof(z.recs),
		"Session":         unsafe.Sizeof(z),
		"Inner":           unsafe.Sizeof(z.inner),
		"Conn":            unsafe.Sizeof(Conn{}),
	} {
		writeLine("offset", name, off)
	}
}

// writeLine writes a line of the output.
func writeLine(kind, name string, v uintptr) {
	line := kind + "\t" + name + "\t" + strconv.FormatUint(uint64(v), 10) + "\n"
	if _, err := os.Stdout.WriteString(line); err != nil {
		os.Exit(1)
	}
}
