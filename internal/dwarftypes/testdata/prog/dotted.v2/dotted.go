// Package dotted has a dot in the last element of its path, which the
// compiler escapes in its symbols' names ("dotted%2ev2.Root").
package dotted

type Node struct {
	next *Node
}

var Root = &Node{}
