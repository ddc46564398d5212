package heapdump

import "strings"

// The layout of a Go map (internal/runtime/maps), as a chain crosses it:
//
//	Map (48 bytes) --dirPtr at 16--> group                       (at most 8 entries)
//	Map (48 bytes) --dirPtr at 16--> directory []*table
//	    --some slot--> table (32 bytes) --groups.data at 16--> groups
//
// Only the groups can carry a name: an array of groups larger than 512
// bytes has a malloc header whose type the compiler names "map.group[K]V"
// (cmd/compile/internal/types/fmt.go); the header, tables and directories
// of at most 512 bytes have none. So a collapse starts from a named group
// and takes in the hops before it only where their sizes, offsets and
// lack of a name match the layout above: an unnamed 48-byte object with a
// pointer at 16 is common, and taking the wrong object into a map would
// hide the real holder.
const (
	mapGroupPrefix = "map.group["
	mapHeaderSize  = 48
	mapDirPtrOff   = 16
	mapTableSize   = 32
	mapGroupsOff   = 16
	mapTableType   = "*maps.table" // the elements of a directory too large to lack a header
)

// collapseMaps replaces each run of hops that crosses a map's internals
// with one Map hop. It reuses the array of chain.
func collapseMaps(chain []Hop) []Hop {
	out := chain[:0]
	for i := 0; i < len(chain); i++ {
		h := chain[i]
		if i == 0 || !strings.HasPrefix(h.Name, mapGroupPrefix) {
			out = append(out, h)
			continue
		}
		// out ends with the hops before the group; find where the map
		// begins among them.
		first := len(out)
		next := h // the hop after the part taken in so far
		if t := first - 1; t >= 1 && isMapTable(out[t]) && next.Offset == mapGroupsOff {
			// A table. Take its directory only with the map's header
			// before it, or a root (a map header on the stack).
			d := t - 1
			switch {
			case d >= 1 && isMapDirectory(out[d], out[t]) && d-1 >= 1 && isMapHeader(out[d-1]) && out[d].Offset == mapDirPtrOff:
				first = d - 1
			case d >= 1 && isMapDirectory(out[d], out[t]) && d == 1:
				first = d
			default:
				first = t
			}
		} else if m := first - 1; m >= 1 && isMapHeader(out[m]) && next.Offset == mapDirPtrOff {
			first = m
		}
		c := Hop{
			Name: "map[" + strings.TrimPrefix(h.Name, mapGroupPrefix),
			Size: h.Size,
			Type: h.Type,
			Map:  true,
		}
		if first < len(out) {
			c.Offset = out[first].Offset
		} else {
			c.Offset = h.Offset
		}
		for _, x := range out[first:] {
			c.Size += x.Size
		}
		out = append(out[:first], c)
	}
	return out
}

func isMapHeader(h Hop) bool { return h.Size == mapHeaderSize && h.Name == "" && !h.Map }

func isMapTable(h Hop) bool { return h.Size == mapTableSize && h.Name == "" && !h.Map }

// isMapDirectory reports whether d can be a directory holding table t: a
// slot of pointers, named as one if it is large enough to be named.
func isMapDirectory(d, t Hop) bool {
	return (d.Name == "" || d.Name == mapTableType) && !d.Map && t.Offset%8 == 0 && t.Offset < d.Size
}
