package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/gregor-streaming/gregor/internal/admin"
	"github.com/gregor-streaming/gregor/internal/auth"
	"github.com/gregor-streaming/gregor/internal/broker"
	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/console"
	"github.com/gregor-streaming/gregor/internal/metrics"
	"github.com/gregor-streaming/gregor/internal/server"
)

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func serve(args []string) int {
	started := time.Now()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9092", "address to accept Kafka clients on, HOST:PORT")
	dataDir := fs.String("data-dir", "gregor-data", "directory for partition logs and cluster metadata")
	configFile := fs.String("config", "", "server.properties file with Kafka property names")
	advertise := fs.String("advertise", "", "HOST:PORT announced to clients (default: the listen address)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	adminListen := fs.String("admin-listen", "127.0.0.1:9644", "admin HTTP address for /metrics, /healthz, /readyz and the web console; empty disables it")
	pprofOn := fs.Bool("pprof", false, "serve Go's pprof profiles under /debug/pprof/ on the admin address")
	var sets, addScram multiFlag
	fs.Var(&sets, "set", "broker property NAME=VALUE, by its Kafka name (repeatable)")
	fs.Var(&addScram, "add-scram", "SASL user to create unless it exists, MECHANISM=[name=NAME,password=PASSWORD] with SCRAM-SHA-256 or SCRAM-SHA-512 (repeatable)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: gregor serve [flags]

Runs a broker. With no flags: 127.0.0.1:9092, data in ./gregor-data.
Properties take Kafka's names; precedence (highest first): --set,
GREGOR_* environment variables (GREGOR_NUM_PARTITIONS=3), --config file.

Examples:
  gregor serve
  gregor serve --listen 0.0.0.0:9092 --data-dir /var/lib/gregor
  gregor serve --set num.partitions=3 --set log.retention.hours=24
  gregor serve --admin-listen 0.0.0.0:9644 --pprof   # metrics and profiles for remote scrapes
  gregor serve --set listeners=SASL_SSL://0.0.0.0:9093 --set ssl.keystore.location=broker.pem \
      --add-scram 'SCRAM-SHA-256=[name=alice,password=alice-secret]'

Admin endpoints (--admin-listen): /metrics (Prometheus; docs/METRICS.md),
/healthz (200 while the process runs), /readyz (200 once logs are
recovered and the listener is up, 503 while starting or shutting down),
/console/ (the read-only web console; docs/CONSOLE.md). The console needs
no credentials whatever the listeners' security: anyone who can reach the
admin address can read the cluster's metadata through it. Keep the admin
address on a trusted interface, or --set admin.console.enable=false.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	log, err := newLogger(*logFormat, *logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gregor serve:", err)
		return 2
	}

	props := map[string]string{}
	if *configFile != "" {
		f, err := os.Open(*configFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gregor serve:", err)
			return 2
		}
		fileProps, err := config.ParseProperties(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "gregor serve: %s: %v\n", *configFile, err)
			return 2
		}
		for k, v := range fileProps {
			props[k] = v
		}
	}
	for k, v := range config.FromEnv(os.Environ(), log) {
		props[k] = v
	}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "gregor serve: --set %q: want NAME=VALUE\n", s)
			return 2
		}
		props[strings.TrimSpace(k)] = v
	}
	cfg, unknown, err := config.NewBroker(props)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gregor serve:", err)
		return 2
	}
	// Before anything is logged or opened: this may execute gregor again.
	if err := setTimerSlack(cfg.Int("timer.slack.ns")); err != nil {
		log.Warn("cannot set the timer slack; running with the inherited one", "timer.slack.ns", cfg.Int("timer.slack.ns"), "err", err)
	}
	for _, name := range unknown {
		log.Warn("unknown broker property ignored", "name", name)
	}
	// Kafka's log.dirs, listeners and advertised.listeners from the
	// properties apply unless the flags say otherwise.
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if d, ok := cfg.DataDir(); ok && !explicit["data-dir"] {
		*dataDir = d
	}
	listeners, advertised, err := resolveListeners(cfg, *listen, *advertise, explicit)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gregor serve:", err)
		return 2
	}

	// TLS and SASL settings are checked before the data directory is
	// opened; credentials are looked up in the broker's metadata.
	var b *broker.Broker
	lookup := func(user string) []auth.Credential { return b.ScramLookup(user) }
	security := make([]server.Security, len(listeners))
	for i, l := range listeners {
		if security[i], err = server.SecurityFor(cfg, l, lookup); err != nil {
			fmt.Fprintf(os.Stderr, "gregor serve: listener %s: %v\n", l.Name, err)
			return 2
		}
	}
	// The brokers' and controllers' connections to each other
	// (inter.broker.listener.name, controller.listener.names).
	if err := broker.CheckClusterSecurity(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "gregor serve:", err)
		return 2
	}
	srvCfg, err := server.ConfigFrom(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gregor serve:", err)
		return 2
	}
	var scramUsers []scramUser
	for _, s := range addScram {
		u, err := parseAddScram(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gregor serve:", err)
			return 2
		}
		scramUsers = append(scramUsers, u)
	}

	// The admin port comes up first: /healthz answers and /readyz says
	// "recovering" while a large data directory is being recovered.
	collector := &metrics.Collector{}
	registry := metrics.NewRegistry(collector)
	consoleOn := *adminListen != "" && cfg.Bool("admin.console.enable")
	adm := admin.New(admin.Options{Gatherer: registry, Pprof: *pprofOn, Console: consoleOn, Logger: log})
	if *adminListen != "" {
		al, err := adm.Listen(*adminListen)
		if err != nil {
			log.Error("cannot listen", "addr", *adminListen, "err", err, "flag", "--admin-listen")
			return 1
		}
		log.Info("admin listening", "addr", al.Addr().String(), "pprof", *pprofOn, "console", consoleOn)
		defer adm.Shutdown(context.Background())
	}
	adm.SetNotReady("recovering logs")

	// Recovery runs with a P per worker (broker.RecoverWorkers). Each
	// worker's recovery is a string of blocking reads when the page cache
	// is cold, and a goroutine blocked in a read keeps its P until the
	// runtime's monitor takes it back, which with the timer slack
	// (slack_linux.go) happens only after about a millisecond: on two
	// cores two blocked reads held up the other fourteen workers, and a
	// start after kill -9 at 10,000 partitions took 13.4 s instead of
	// 10.2-11.1 without the slack.
	controller, err := controllerListener(cfg, log)
	if err != nil {
		log.Error("cannot join the controller quorum", "err", err)
		return 1
	}
	restoreProcs := raiseProcs(broker.RecoverWorkers)
	b, err = broker.Open(broker.Options{Config: cfg, DataDir: *dataDir, Logger: log, ControllerListener: controller})
	restoreProcs()
	if err != nil {
		if errors.Is(err, syscall.EMFILE) {
			log.Error("cannot open data directory: too many open files; raise the open-file limit (ulimit -n): each partition keeps a file open", "dir", *dataDir, "err", err)
			return 1
		}
		log.Error("cannot open data directory", "dir", *dataDir, "err", err)
		return 1
	}
	for _, u := range scramUsers {
		added, err := b.EnsureScramUser(u.mechanism, u.name, u.password)
		if err != nil {
			log.Error("cannot add SCRAM user", "user", u.name, "mechanism", u.mechanism, "err", err)
			b.Close()
			return 1
		}
		if added {
			log.Info("SCRAM user added", "user", u.name, "mechanism", u.mechanism)
		}
	}
	if consoleOn {
		// The console's connections are in memory (server.DialInternal)
		// and carry a principal no network client can have; with an
		// authorizer it may describe everything. Before any listener
		// serves: the super users are read without a lock.
		if err := b.TrustInternalPrincipal(server.InternalPrincipal); err != nil {
			log.Error("cannot set up the console's principal", "err", err)
			b.Close()
			return 1
		}
	}
	collector.SetBroker(b)
	srv := server.New(b, srvCfg, log)
	var consoleListeners []console.Listener
	for i, l := range listeners {
		ln, err := net.Listen("tcp", l.Addr)
		if err != nil {
			log.Error("cannot listen", "addr", l.Addr, "listener", l.Name, "err", err)
			srv.Shutdown(context.Background())
			b.Close()
			return 1
		}
		// The advertised endpoint is set before the listener accepts
		// (its port known even for :0): a client connecting at once
		// must not be told another listener's address, or ":0".
		adv := cmp.Or(advertised[l.Name], ln.Addr().String())
		host, port, err := splitAdvertised(adv)
		if err != nil {
			log.Error("bad advertised address", "addr", adv, "listener", l.Name, "err", err)
			ln.Close()
			srv.Shutdown(context.Background())
			b.Close()
			return 2
		}
		b.SetListenerAdvertised(l.Name, host, port)
		if i == 0 {
			b.SetAdvertised(host, port)
		}
		if err := srv.ServeListener(ln, l.Name, security[i]); err != nil {
			log.Error("cannot serve", "addr", l.Addr, "listener", l.Name, "err", err)
			ln.Close()
			srv.Shutdown(context.Background())
			b.Close()
			return 1
		}
		log.Info("gregor listening", "addr", ln.Addr().String(), "listener", l.Name, "protocol", l.Protocol, "advertised", adv, "data_dir", *dataDir)
		consoleListeners = append(consoleListeners, console.Listener{Name: l.Name, Protocol: l.Protocol, Address: ln.Addr().String(), Advertised: adv})
	}
	if controller != nil {
		// The other brokers list this one (Metadata) once its
		// endpoints are known.
		if err := b.Register(); err != nil {
			log.Error("cannot register with the cluster", "err", err)
			srv.Shutdown(context.Background())
			b.Close()
			return 1
		}
	}
	collector.SetConns(srv)
	// Signals are caught from here on, before the console is set up and
	// before /readyz says 200: a client that reached a listener may stop
	// the broker cleanly with SIGTERM. (Before, during recovery, the
	// default action stops it; recovery is crash-safe.)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	if consoleOn {
		con, err := console.New(console.Options{
			Dial:      func(context.Context) (net.Conn, error) { return srv.DialInternal() },
			Metrics:   registry,
			Version:   version(),
			Started:   started,
			Listeners: consoleListeners,
			Logger:    log,

			AllowedHosts: config.SplitList(cfg.String("admin.console.allowed.hosts")),
		})
		if err != nil {
			log.Error("cannot start the console", "err", err)
			srv.Shutdown(context.Background())
			b.Close()
			return 1
		}
		// Runs before the admin server's Shutdown (deferred earlier):
		// a page still waiting for the stopped broker fails at once.
		defer con.Close()
		adm.SetConsole(con)
	}
	adm.SetReady()
	s := <-sig
	log.Info("shutting down", "signal", s.String())
	adm.SetNotReady("shutting down")
	signal.Stop(sig)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A cluster's broker first hands its leaderships to other replicas
	// while it still serves (what waits on them fails over); parked
	// fetches answer at once; then the server stops reading and waits
	// for in-flight requests (produces waiting for fsync finish
	// normally); then logs are synced and closed.
	b.ControlledShutdown()
	b.Drain()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("connections did not finish in time", "err", err)
	}
	if err := b.Close(); err != nil {
		log.Error("closing logs", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func splitAdvertised(addr string) (string, int32, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	var port int32
	if _, err := fmt.Sscan(p, &port); err != nil {
		return "", 0, err
	}
	if h == "" || h == "0.0.0.0" || h == "::" {
		if name, err := os.Hostname(); err == nil {
			h = name
		}
	}
	return h, port, nil
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// raiseProcs raises GOMAXPROCS to at least n and returns the function
// that puts it back: to the value the GOMAXPROCS variable set, or else to
// the runtime's default, which follows the CPU limit.
func raiseProcs(n int) (restore func()) {
	prev := runtime.GOMAXPROCS(0)
	if prev >= n {
		return func() {}
	}
	runtime.GOMAXPROCS(n)
	return func() {
		if os.Getenv("GOMAXPROCS") != "" {
			runtime.GOMAXPROCS(prev)
		} else {
			runtime.SetDefaultGOMAXPROCS()
		}
	}
}

// controllerListener opens this node's controller listener when
// controller.quorum.voters names more than one voter (cluster mode); nil
// for a single node. The listener binds the node's own voter address.
func controllerListener(cfg *config.BrokerConfig, log *slog.Logger) (net.Listener, error) {
	voters, err := cfg.Voters()
	if err != nil || len(voters) <= 1 {
		return nil, err // one voter: broker.Open checks it is this node
	}
	id := int32(cfg.Int("node.id"))
	addr, ok := voters[id]
	if !ok {
		return nil, fmt.Errorf("node.id %d is not one of controller.quorum.voters", id)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("controller listener: %w", err)
	}
	log.Warn("cluster mode is a preview (docs/CLUSTER.md)")
	cl, err := cfg.ControllerListener()
	if err != nil {
		l.Close()
		return nil, err
	}
	if cl.Protocol == config.Plaintext {
		log.Warn("the controller listener is neither encrypted nor authenticated: whoever reaches it can take part in the metadata quorum; map it to SSL (docs/SECURITY.md, \"Cluster security\")", "listener", cl.Name)
	}
	if ib, err := cfg.InterBrokerListener(); err == nil && ib.Protocol == config.Plaintext && cfg.String("authorizer.class.name") != "" {
		log.Warn("the inter-broker listener is PLAINTEXT: the other brokers reach it as User:ANONYMOUS, which needs CLUSTER_ACTION on the cluster to replicate", "listener", ib.Name)
	}
	log.Info("controller listening", "addr", l.Addr().String(), "node_id", id, "voters", len(voters), "listener", cl.Name, "protocol", cl.Protocol)
	return l, nil
}
