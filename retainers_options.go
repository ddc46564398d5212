package profiler

import (
	"fmt"
	"time"
)

// DefaultMaxRetainersPause is the longest pause WriteRetainers accepts by
// default: the world is stopped for the whole heap dump, about 0.15 s plus
// 3 ms per MB of heap, so one second allows a heap of about 280 MB.
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

func (p *Profiler) maxRetainersPause() time.Duration { return p.cfg.maxRetainersPause }
