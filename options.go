package profiler

import (
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Defaults for the options; each option's doc repeats its own.
const (
	DefaultSamplingRate  = 512 * 1024
	DefaultOutputDir     = "heapprofiles"
	DefaultFlushInterval = 60 * time.Second
	DefaultMaxFiles      = 100
	DefaultMaxBytes      = 256 << 20
	DefaultRetainAll     = time.Hour
	DefaultRetainHourly  = 24 * time.Hour
	DefaultExportTimeout = 10 * time.Second
	DefaultMemoryPoll    = 250 * time.Millisecond
	DefaultPeakMargin    = 0.2

	minFlushInterval = time.Second
)

// An Option configures Start. Options are validated together when Start
// runs; an invalid one makes Start fail with an error naming it.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	rate              int
	dir               string
	interval          time.Duration
	maxFiles          int
	maxBytes          int64
	retainAll         time.Duration
	retainHr          time.Duration
	maxLive           int
	maxStacks         int
	depth             int
	logger            *slog.Logger
	exporters         []Exporter
	exportTTL         time.Duration // of each Export call
	memPoll           time.Duration // 0: no memory watcher
	fractions         []float64     // of the memory limit, ascending
	peakMargin        float64       // 0: no peak profiles
	leakWarn          bool
	maxRetainersPause time.Duration // WithMaxRetainersPause
	leakRetainers     bool          // WithLeakRetainers
	goHeap            bool
	gcFirst           bool
	seed              uint64 // of the sampler; 0 draws one
}

func defaultConfig() config {
	return config{
		rate:              DefaultSamplingRate,
		dir:               DefaultOutputDir,
		interval:          DefaultFlushInterval,
		maxFiles:          DefaultMaxFiles,
		maxBytes:          DefaultMaxBytes,
		retainAll:         DefaultRetainAll,
		retainHr:          DefaultRetainHourly,
		maxLive:           defaultMaxLiveSamples,
		maxStacks:         defaultMaxStacks,
		depth:             defaultStackDepth,
		logger:            slog.Default(),
		exportTTL:         DefaultExportTimeout,
		memPoll:           DefaultMemoryPoll,
		fractions:         []float64{0.70, 0.85, 0.95},
		peakMargin:        DefaultPeakMargin,
		leakWarn:          true,
		maxRetainersPause: DefaultMaxRetainersPause,
		goHeap:            true,
	}
}

// WithSamplingRate sets the mean number of bytes between samples: an
// allocation of s bytes is sampled with probability 1-exp(-s/bytes), and 1
// records every allocation. It must be between 1 and 2^30. The default is
// 512 KiB, the Go runtime's own default (runtime.MemProfileRate).
//
// With the Go heap source on (WithGoHeap), the rate is also set as
// runtime.MemProfileRate, a process-wide setting, for as long as the
// profiler runs; Stop restores the previous value. The runtime scales every
// Go heap sample with the rate in force when the profile is read, so Go
// allocations sampled before Start at a different rate are mis-scaled by
// the ratio of the two rates: start the profiler first thing in main, or
// keep the default rate, which is the runtime's default too. Each profile's
// comments record both rates.
func WithSamplingRate(bytes int) Option {
	return optionFunc(func(c *config) error {
		if bytes < 1 || bytes > maxSamplingRate {
			return fmt.Errorf("WithSamplingRate(%d): rate must be between 1 and %d bytes", bytes, maxSamplingRate)
		}
		c.rate = bytes
		return nil
	})
}

// WithOutputDir sets the directory profiles are written to, created with
// mode 0700 if missing. The default is "heapprofiles", relative to the
// working directory. Of WithOutputDir and WithoutFiles, the last given
// wins.
func WithOutputDir(dir string) Option {
	return optionFunc(func(c *config) error {
		if dir == "" {
			return fmt.Errorf("WithOutputDir(%q): directory must not be empty", dir)
		}
		c.dir = dir
		return nil
	})
}

// WithoutFiles writes no profile files, for a program whose profiles go
// only to an exporter (WithExporter) or are only read over HTTP (Handler),
// such as a container with a read-only root filesystem. Flush then returns
// an empty path, and the file options (WithMaxFiles, WithMaxBytes,
// WithRetention) have no effect.
func WithoutFiles() Option {
	return optionFunc(func(c *config) error {
		c.dir = ""
		return nil
	})
}

// WithExporter adds a destination that every profile is sent to, besides
// the files (or instead of them, with WithoutFiles): see Exporter. It may be
// given more than once, for several destinations.
//
// Each exporter has a goroutine and a queue of its own. The queue holds
// two profiles; a profile that arrives when it is full pushes out the
// oldest waiting one, which is counted in Stats.ExportDropped. An
// exporter's memory is so bounded by three profiles (two waiting, one
// being sent), whatever its destination does.
func WithExporter(e Exporter) Option {
	return optionFunc(func(c *config) error {
		if e == nil {
			return fmt.Errorf("WithExporter(nil): exporter must not be nil")
		}
		c.exporters = append(c.exporters, e)
		return nil
	})
}

// WithExportTimeout bounds each Exporter.Export call, retries included: its
// context is cancelled after d. Stop sends the final profile to every
// exporter and waits for that as long, at most: an export in flight when
// Stop begins is cancelled, the final profile superseding it. It must be
// at least one second; the default is 10 seconds, well within the 30
// seconds a container is usually given between SIGTERM and SIGKILL.
func WithExportTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < time.Second {
			return fmt.Errorf("WithExportTimeout(%v): timeout must be at least 1s", d)
		}
		c.exportTTL = d
		return nil
	})
}

// WithMemoryPoll sets how often the memory watcher reads the process's
// memory, to write a profile of its own when memory nears its limit
// (WithLimitFractions) or reaches a new peak (WithPeakMargin): a process
// killed for its memory, with SIGKILL, has no chance to write one then.
// Such a profile is taken after a garbage collection, so that its Go heap
// figures are current, and is named heap-<time>-<pid>-limit<N>.pb.gz or
// -peak.pb.gz; retention keeps the newest of each name whatever its age,
// and its comments say what triggered it, with the memory figures. Peak
// profiles are written at most one a second. 0 turns the watcher off. The
// default is a quarter of a second, so that a climb to the limit is caught
// within that; bench/RESULTS.md gives what a poll costs. It must be 0 or at
// least 10 ms.
func WithMemoryPoll(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d != 0 && d < 10*time.Millisecond {
			return fmt.Errorf("WithMemoryPoll(%v): must be 0 (off) or at least 10ms", d)
		}
		c.memPoll = d
		return nil
	})
}

// WithLimitFractions sets the fractions of the effective memory limit at
// which the memory watcher writes a profile, the first time usage rises
// past each one, and again only after usage fell 5 points below it. The
// effective limit is the nearer of the cgroup's memory limit (Linux, v1 or
// v2, the lowest set on the process's cgroup and its ancestors), against
// its working set as the kubelet counts it, and GOMEMLIMIT, against the Go
// runtime's memory; with neither set, no such profile is written. Each
// fraction must be above 0 and at most 1, in ascending order; none turns
// these profiles off. The default is 0.70, 0.85 and 0.95.
func WithLimitFractions(fractions ...float64) Option {
	return optionFunc(func(c *config) error {
		for i, f := range fractions {
			if !(f > 0 && f <= 1) || i > 0 && f <= fractions[i-1] {
				return fmt.Errorf("WithLimitFractions(%v): want ascending fractions above 0 and at most 1", fractions)
			}
		}
		c.fractions = slices.Clone(fractions)
		return nil
	})
}

// WithPeakMargin sets how far above the last peak profile, as a fraction
// of its memory, the process's memory must rise for the memory watcher to
// write a new peak profile: with the default 0.2, the largest the process
// ever was is explained on disk to within 20 %. The memory is the larger of
// the process's resident set (Linux) and the Go runtime's memory; the
// first peak is measured from the memory at Start, and none is written
// below 64 MiB. It must be 0 (no peak
// profiles) or between 0.01 and 10.
func WithPeakMargin(m float64) Option {
	return optionFunc(func(c *config) error {
		if m != 0 && !(m >= 0.01 && m <= 10) {
			return fmt.Errorf("WithPeakMargin(%v): must be 0 (off) or between 0.01 and 10", m)
		}
		c.peakMargin = m
		return nil
	})
}

// WithLeakWarnings sets whether every profile also feeds the leak
// detector, which logs a site whose in-use memory grows steadily once, at
// level WARN with the message "leak suspect" (and again when it has grown
// by half since), and lists the current suspects in Suspects. It scores
// sites as `leakhunt rank` does. On by default; see Suspects for the
// evidence a warning needs and what the detector holds.
func WithLeakWarnings(on bool) Option {
	return optionFunc(func(c *config) error {
		c.leakWarn = on
		return nil
	})
}

// WithFlushInterval sets how often a profile is written in the background.
// It must be at least one second. The default is 60 seconds. The first
// profile is written one second after Start, so that a program stopped
// early still leaves one behind.
func WithFlushInterval(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < minFlushInterval {
			return fmt.Errorf("WithFlushInterval(%v): interval must be at least %v", d, minFlushInterval)
		}
		c.interval = d
		return nil
	})
}

// WithMaxFiles bounds how many profile files are kept in the output
// directory; after each write the oldest beyond n are deleted, whatever
// WithRetention would keep. It counts every file named like this package's
// profiles, whichever process wrote it, so a restarted program keeps
// honouring the bound. The default is 100, room for an hour of files at
// the default interval plus a day of hourly ones.
func WithMaxFiles(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 {
			return fmt.Errorf("WithMaxFiles(%d): must keep at least 1 file", n)
		}
		c.maxFiles = n
		return nil
	})
}

// WithMaxBytes bounds the total size of the profile files in the output
// directory: after each write the oldest are deleted until the rest, the
// new one included, add up to n bytes at most, whatever WithRetention and
// WithMaxFiles would keep. The file just written is always kept, even if
// it alone is larger than n; while it is being written the directory holds
// it on top of the others. Like WithMaxFiles, it counts every file named
// like this package's profiles, whichever process wrote it, and no other
// file. n must be at least 1. The default is 256 MiB: a profile is
// typically tens of kilobytes to a few megabytes, so the default 100 files
// fit unless they average more than 2.5 MiB, and profiles larger than that
// still leave a series of dozens rather than growing into gigabytes.
//
// The bound keeps the profiler from filling a disk, not others: when a
// write fails because the disk is full all the same, the profiler deletes
// files named like its profiles, those retention would delete first and
// then the oldest, until there is room for the new one, and tries the
// write once more. It never deletes any other file.
func WithMaxBytes(n int64) Option {
	return optionFunc(func(c *config) error {
		if n < 1 {
			return fmt.Errorf("WithMaxBytes(%d): must allow at least 1 byte", n)
		}
		c.maxBytes = n
		return nil
	})
}

// WithMaxLiveSamples bounds the number of sampled allocations kept live at
// once (each takes about 60 bytes with its share of the Free filter). Past
// the bound new samples are dropped; the drops are counted in Stats and in
// each profile's comments. The default is 131072, which at the default rate
// represents 64 GiB of live memory.
//
// Two fixed bounds apply besides: 65536 distinct stacks (a stack beyond
// them is recorded under a "[stack table full]" frame) and 262143 distinct
// (heap, stack, size, label set) combinations at once, each one sample
// line of a profile. When the combinations are used up, those with nothing
// live are recycled: their allocations stay in the profiles' alloc_*
// figures, on one line per heap, stack and label set (without a bytes
// label, their sizes being mixed). A sample is dropped, and counted, only
// when every combination has live allocations.
func WithMaxLiveSamples(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 || n > 1<<30 {
			return fmt.Errorf("WithMaxLiveSamples(%d): must be between 1 and %d", n, 1<<30)
		}
		c.maxLive = n
		return nil
	})
}

// WithStackDepth sets how many frames of each sampled stack are kept, at
// most 256. Deeper stacks are cut at the root end and marked with a
// "[truncated]" frame. The default is 128, as in runtime/pprof heap
// profiles.
func WithStackDepth(frames int) Option {
	return optionFunc(func(c *config) error {
		if frames < 1 || frames > maxStackDepth {
			return fmt.Errorf("WithStackDepth(%d): depth must be between 1 and %d", frames, maxStackDepth)
		}
		c.depth = frames
		return nil
	})
}

// WithLogger sets the logger for failures in the background, such as a
// profile that could not be written. The default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			return fmt.Errorf("WithLogger(nil): logger must not be nil")
		}
		c.logger = l
		return nil
	})
}

// WithGoHeap sets whether the Go runtime's own sampled heap profile is
// merged into every profile, its samples labelled heap=go. It is on by
// default, so that Start alone profiles an unmodified program; the hook adds
// what the runtime cannot see. See WithSamplingRate for the process-wide
// rate this sets.
func WithGoHeap(on bool) Option {
	return optionFunc(func(c *config) error {
		c.goHeap = on
		return nil
	})
}

// WithGCBeforeSnapshot sets whether a garbage collection runs before each
// profile is taken. The Go heap's in-use figures are those of the GC before
// the last one, so without it they lag by up to two GC cycles (a GC runs
// anyway when none ran since the last profile and the live heap is under
// 256 MiB); with it, every flush pays for a full collection, which stops
// no goroutine for long but costs CPU in proportion to the live heap. Off
// by default.
func WithGCBeforeSnapshot(on bool) Option {
	return optionFunc(func(c *config) error {
		c.gcFirst = on
		return nil
	})
}

// WithRetention sets which profile files are kept, judged by the time in
// their names: every file from the last `all`, then the oldest file of each
// hour back to `hourly`; older files are deleted. A series thinned this way
// stays cheap to keep and still shows a leak that takes a day to grow
// (see cmd/leakhunt). WithMaxFiles caps the total on top. The defaults are
// one hour and 24 hours; hourly must be at least all.
func WithRetention(all, hourly time.Duration) Option {
	return optionFunc(func(c *config) error {
		if all < 0 || hourly < all {
			return fmt.Errorf("WithRetention(%v, %v): want 0 <= all <= hourly", all, hourly)
		}
		c.retainAll, c.retainHr = all, hourly
		return nil
	})
}

// withSeed seeds the sampler, so that a statistical test can replay a run:
// the same seed, and the same allocations on the same Ps, give the same
// samples. Unexported: a fixed seed is for tests, never for production.
func withSeed(seed uint64) Option {
	return optionFunc(func(c *config) error {
		c.seed = seed
		return nil
	})
}
