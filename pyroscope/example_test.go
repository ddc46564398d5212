package pyroscope_test

import (
	"log"
	"os"

	"github.com/leakhunt/profiler"
	"github.com/leakhunt/profiler/pyroscope"
)

// Pushing every profile to Grafana Cloud Profiles, besides writing the
// files.
func Example() {
	exp, err := pyroscope.New(pyroscope.Config{
		URL:               "https://profiles-prod-001.grafana.net",
		ServiceName:       "checkout",
		Labels:            map[string]string{"env": "prod", "region": "eu-west"},
		BasicAuthUser:     os.Getenv("PYROSCOPE_USER"),     // the stack's numeric user id
		BasicAuthPassword: os.Getenv("PYROSCOPE_PASSWORD"), // an access policy token
	})
	if err != nil {
		log.Fatal(err)
	}
	p, err := profiler.Start(profiler.WithExporter(exp))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Stop()
	// ... the program ...
}
