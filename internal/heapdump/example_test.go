package heapdump_test

import (
	"fmt"
	"io"
	"log"
	"os"
	"runtime/debug"

	"github.com/leakhunt/profiler/internal/heapdump"
)

// The chains of the sampled objects of this very process. The dump goes
// to a file, never to a pipe this process reads: the dump stops the world.
func ExampleAnalyze() {
	f, err := os.CreateTemp("", "heapdump")
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	debug.WriteHeapDump(f.Fd())
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		log.Fatal(err)
	}
	res, err := heapdump.Analyze(f, nil, heapdump.Options{})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range res.Samples {
		if s.Chain == nil {
			continue // garbage not yet collected
		}
		fmt.Printf("%d bytes held by %v root %s, %d hops away\n", s.Size, s.Chain[0].Root, s.Chain[0].Name, len(s.Chain)-1)
	}
}
