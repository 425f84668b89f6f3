package meter_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"

	"github.com/usaged/usaged/meter"
	"github.com/usaged/usaged/meter/attrib"
	"github.com/usaged/usaged/meter/route"
	"github.com/usaged/usaged/meter/spool"
	"github.com/usaged/usaged/usage"
)

// printSink prints the events it is given. Production code records into a
// spool instead: see Example_production.
type printSink struct{}

func (printSink) Add(ev usage.Event) {
	fmt.Println(ev.OrganizationID, ev.ClientID, ev.HTTPMethod, ev.TemplateURI, ev.Status)
}

// A Go service meters itself by wrapping its handler: every request is
// recorded under its route template and the client a trusted gateway named
// in its headers. Here the events are printed; in production they go to a
// durable spool that ships them to usaged (Example_production).
func Example() {
	app := http.NewServeMux()
	app.HandleFunc("GET /api/v2/users/{userId}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"id":%q}`, r.PathValue("userId"))
	})

	templates, err := route.New([]string{"/api/v2/users/{userId}"}, route.Options{})
	if err != nil {
		log.Fatal(err)
	}
	who, err := attrib.NewHeaders(attrib.HeaderConfig{Organization: "X-Org", Client: "X-Client"})
	if err != nil {
		log.Fatal(err)
	}
	m, err := meter.New(meter.Config{
		Templates:  meter.Paths(templates), // or meter.ServeMuxPatterns(meter.Paths(templates))
		Attributor: who,
		Sink:       printSink{},
		Platform:   "example",
	})
	if err != nil {
		log.Fatal(err)
	}
	handler := m.Middleware(app) // serve this instead of app

	req := httptest.NewRequest("GET", "/api/v2/users/8f1c", nil)
	req.Header.Set("X-Org", "org-1")
	req.Header.Set("X-Client", "client-1")
	handler.ServeHTTP(httptest.NewRecorder(), req)
	// A request nobody can be identified for is counted, not recorded.
	handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/v2/users/8f1c", nil))

	m.Close() // on shutdown, after the server: attributes what is pending
	st := m.Stats()
	fmt.Println("recorded", st.Recorded, "unidentified", st.Unidentified)
	// Output:
	// org-1 client-1 GET api/v2/users/{userId} 200
	// recorded 1 unidentified 1
}

// In production the sink is a spool, which keeps events on disk until its
// shipper has delivered them to usaged. On shutdown: stop the server, close
// the Meter (it hands the spool what is pending), then stop the shipper and
// close the spool; what was not delivered is sent after the next start.
func Example_production() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	sp, err := spool.Open(spool.Config{Dir: "/var/lib/myservice/usage"})
	if err != nil {
		log.Fatal(err)
	}
	defer sp.Close()
	shipper, err := spool.NewShipper(spool.ShipperConfig{
		Spool:  sp,
		Server: "https://usaged.example.com",
		Token:  os.Getenv("USAGED_TOKEN"), // an admin token, or a client token with usage:event:add
	})
	if err != nil {
		log.Fatal(err)
	}
	shipCtx, stopShipping := context.WithCancel(context.Background())
	shipped := make(chan error, 1)
	go func() { shipped <- shipper.Run(shipCtx) }()

	who, err := attrib.NewHeaders(attrib.HeaderConfig{Organization: "X-Org", Client: "X-Client"})
	if err != nil {
		log.Fatal(err)
	}
	m, err := meter.New(meter.Config{
		Templates:  meter.ServeMuxPatterns(meter.TemplateFunc(func(*http.Request) string { return "unmatched" })),
		Attributor: who,
		Sink:       sp,
	})
	if err != nil {
		log.Fatal(err)
	}

	app := http.NewServeMux()
	app.HandleFunc("GET /api/v2/users/{userId}", func(w http.ResponseWriter, r *http.Request) {})
	srv := &http.Server{Addr: ":8080", Handler: m.Middleware(app)}
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Print(err)
	}

	m.Close()
	sp.Flush()
	stopShipping()
	<-shipped
}
