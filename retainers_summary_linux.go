package profiler

import (
	"cmp"
	"fmt"

	"github.com/leakhunt/profiler/internal/heapdump"
)

// summarize groups the sampled objects of res, and lists its targets.
func summarize(res *heapdump.Result) *retainersSummary {
	s := &retainersSummary{Objects: res.Objects, Edges: res.Edges}
	stacks, chains := make(map[string]int), make(map[string]int)
	groups := make(map[retainersGroup]int) // with Count 0 -> index
	var key []byte
	for i := range res.Samples {
		sm := &res.Samples[i]
		if sm.Target {
			t := retainersTarget{Chain: -1, Size: sm.Size}
			if sm.Chain != nil {
				t.Chain, key = chainIndex(s, chains, sm.Chain, key)
			}
			s.Targets = append(s.Targets, t)
			continue
		}
		if sm.Chain == nil {
			s.Unreachable++
			continue
		}
		key = key[:0]
		for _, f := range sm.Stack {
			key = fmt.Appendf(key, "%s\x00%s\x00%d\x00", f.Func, f.File, f.Line)
		}
		st, ok := stacks[string(key)]
		if !ok {
			st = len(s.Stacks)
			stacks[string(key)] = st
			s.Stacks = append(s.Stacks, sm.Stack)
		}
		var ch int
		ch, key = chainIndex(s, chains, sm.Chain, key)
		g := retainersGroup{Stack: st, Chain: ch, Size: cmp.Or(sm.BucketSize, sm.Size)}
		j, ok := groups[g]
		if !ok {
			j = len(s.Groups)
			groups[g] = j
			s.Groups = append(s.Groups, g)
		}
		s.Groups[j].Count++
	}
	return s
}

// chainIndex returns the index of chain in s.Chains, adding it if it is
// new; chains maps each one's key to its index. key is scratch, returned
// for reuse.
func chainIndex(s *retainersSummary, chains map[string]int, chain []heapdump.Hop, key []byte) (int, []byte) {
	key = key[:0]
	for _, h := range chain {
		key = fmt.Appendf(key, "%d\x00%s\x00%d\x00%d\x00%d\x00%t\x00", h.Root, h.Name, h.Size, h.Offset, h.Type, h.Map)
	}
	ch, ok := chains[string(key)]
	if !ok {
		ch = len(s.Chains)
		chains[string(key)] = ch
		s.Chains = append(s.Chains, chain)
	}
	return ch, key
}
