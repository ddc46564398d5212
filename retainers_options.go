package profiler

import (
	"fmt"
	"time"
)

// DefaultMaxRetainersPause is the longest pause WriteRetainers accepts by
// default: the world is stopped for the whole heap dump, whose estimated
// pause grows with the heap, so the default allows a heap of a few hundred
// megabytes.
const DefaultMaxRetainersPause = time.Second

// WithMaxRetainersPause sets the longest pause WriteRetainers accepts: it
// estimates the pause of the heap dump from the heap's size and refuses
// above d. It must be at least 10ms. The default is DefaultMaxRetainersPause.
func WithMaxRetainersPause(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < 10*time.Millisecond {
			return fmt.Errorf("WithMaxRetainersPause(%v): must be at least 10ms", d)
		}
		c.maxRetainersPause = d
		return nil
	})
}

// WithLeakRetainers sets whether a leak warning also takes a retainers
// profile (WriteRetainers) and writes it to the output directory, named
// retainers-<UTC time>-<pid>.pb.gz, so that what holds a leak is on disk
// beside the heap profiles that show it. The "leak suspect" warning is
// followed by an INFO line, "leak suspect retainers profile", with the
// file's path and the top suspect's function; a failure is logged at
// WARN. Each one stops the world for a heap dump, bounded by
// WithMaxRetainersPause: at most one is taken a minute, none while
// another retainers profile is being taken, and the directory keeps the
// newest 4 of them (their bytes apart from WithMaxBytes's). Off by
// default; it needs Linux, the output directory and leak warnings, and
// Start fails without the last two.
func WithLeakRetainers(on bool) Option {
	return optionFunc(func(c *config) error {
		c.leakRetainers = on
		return nil
	})
}

func (p *Profiler) maxRetainersPause() time.Duration { return p.cfg.maxRetainersPause }
