package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/leakhunt/profiler"
)

func main() {
	// Ctrl-C and SIGTERM cancel ctx instead of killing the process.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	p, err := profiler.Start() // the Go heap, profiled to ./heapprofiles
	if err != nil {
		log.Fatal(err)
	}
	defer p.Stop() // writes the final profile when main returns

	<-ctx.Done() // the program runs here until Ctrl-C or SIGTERM
}
