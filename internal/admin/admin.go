// Package admin is the broker's admin HTTP server (--admin-listen,
// default 127.0.0.1:9644): /metrics for Prometheus, /healthz and /readyz
// for orchestrators, the read-only web console under /console/ (package
// console), and, when enabled, Go's pprof under /debug/pprof/.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure a Server.
type Options struct {
	// Gatherer is what /metrics exposes; nil = no /metrics.
	Gatherer prometheus.Gatherer
	// Pprof mounts net/http/pprof under /debug/pprof/. Off by default:
	// profiles reveal internals and cost CPU, so an operator opts in.
	Pprof bool
	// Console mounts the web console under /console/ (SetConsole hands
	// it over once the broker is open; until then it answers 503) and
	// lists it on the index page.
	Console bool
	// Logger; nil = slog.Default().
	Logger *slog.Logger
}

// Server serves the admin endpoints. It starts not ready.
type Server struct {
	log *slog.Logger
	mux *http.ServeMux
	// notReady is why the broker is not ready ("" = ready).
	notReady atomic.Pointer[string]
	// console serves /console/ once SetConsole has run (Options.Console).
	console atomic.Pointer[http.Handler]

	// mu guards srv.
	mu  sync.Mutex
	srv *http.Server
	wg  sync.WaitGroup
}

// New returns a Server whose /readyz reports "starting" until SetReady.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{log: opts.Logger, mux: http.NewServeMux()}
	s.SetNotReady("starting")
	s.mux.HandleFunc("GET /{$}", s.index(opts))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		// Liveness: the process is up and serving HTTP. A broker still
		// recovering its logs is alive, just not ready.
		fmt.Fprintln(w, "ok")
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if reason := *s.notReady.Load(); reason != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready:", reason)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if opts.Gatherer != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
			ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
			ErrorHandling:     promhttp.ContinueOnError,
			EnableOpenMetrics: true,
		}))
	}
	if opts.Console {
		s.mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
			h := s.console.Load()
			if h == nil {
				// The admin port comes up before the broker's logs are
				// recovered; the console needs the broker.
				w.Header().Set("Retry-After", "1")
				http.Error(w, "console: the broker is starting; "+*s.notReady.Load(), http.StatusServiceUnavailable)
				return
			}
			(*h).ServeHTTP(w, r)
		})
	}
	if opts.Pprof {
		s.mux.HandleFunc("/debug/pprof/", pprof.Index)
		s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return s
}

func (s *Server) index(opts Options) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "gregor admin")
		if opts.Gatherer != nil {
			fmt.Fprintln(w, "  /metrics       Prometheus metrics")
		}
		fmt.Fprintln(w, "  /healthz       liveness")
		fmt.Fprintln(w, "  /readyz        readiness: 503 while starting or shutting down")
		if opts.Console {
			fmt.Fprintln(w, "  /console/      web console: topics, consumer groups, lag, ACLs (read-only)")
		}
		if opts.Pprof {
			fmt.Fprintln(w, "  /debug/pprof/  Go profiles")
		}
		if opts.Console {
			fmt.Fprintln(w)
			fmt.Fprintln(w, "Anyone who can reach this address can read the cluster's metadata through")
			fmt.Fprintln(w, "the console (topics, groups, offsets, ACLs, SCRAM user names, quotas),")
			fmt.Fprintln(w, "whatever the Kafka listeners' TLS, SASL and ACLs: keep --admin-listen on a")
			fmt.Fprintln(w, "trusted interface, or turn the console off with admin.console.enable=false.")
		}
	}
}

// SetConsole makes h serve /console/ (with Options.Console).
func (s *Server) SetConsole(h http.Handler) { s.console.Store(&h) }

// Handler returns the admin endpoints' handler.
func (s *Server) Handler() http.Handler { return s.mux }

// SetReady makes /readyz answer 200.
func (s *Server) SetReady() { s.SetNotReady("") }

// SetNotReady makes /readyz answer 503 with reason.
func (s *Server) SetNotReady(reason string) { s.notReady.Store(&reason) }

// Listen listens on addr and serves in the background until Shutdown.
func (s *Server) Listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin server stopped", "err", err)
		}
	}()
	return l, nil
}

// Shutdown stops the server, waiting for in-flight requests until ctx
// ends. Idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		srv.Close()
	}
	s.wg.Wait()
	return err
}
