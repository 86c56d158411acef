// Package ktest runs in-process Gregor brokers for tests: each on a
// random loopback port with its own data directory, driven by real
// franz-go clients.
package ktest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregor-streaming/gregor/internal/broker"
	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/server"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// Broker is one in-process broker.
type Broker struct {
	t    testing.TB
	opts options
	// Addr is the broker's host:port. Stable across Restart.
	Addr string
	// Dir is the data directory. Stable across Restart.
	Dir string
	// Listeners holds the addresses of the client listeners after the
	// first (listeners), by name; they change with Restart.
	Listeners map[string]string
	// B is the running broker; replaced by Restart.
	B   *broker.Broker
	srv *server.Server
	// power is the switch between B and opts.fs (nil without WithFS);
	// muted silences B's logger once it is abandoned (Kill, Crash).
	power *powerFS
	muted *atomic.Bool
}

type options struct {
	props     map[string]string
	fs        vfs.FS
	log       *slog.Logger
	fileLimit int64
	net       *Network
}

// Option configures a test broker.
type Option func(*options)

// Set sets a broker property by its Kafka name.
func Set(name, value string) Option {
	return func(o *options) { o.props[name] = value }
}

// WithFS runs the broker on fs instead of the OS file system. Kill and
// Crash need it.
func WithFS(fs vfs.FS) Option { return func(o *options) { o.fs = fs } }

// WithLogger sets the brokers' logger (default: stderr, warnings and up,
// everything with GREGOR_TEST_LOG set).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithOpenFileLimit makes the broker take n as its open-file limit,
// which bounds the partitions it hosts (broker.Options.OpenFileLimit).
func WithOpenFileLimit(n int64) Option { return func(o *options) { o.fileLimit = n } }

// NewBroker starts a broker and stops it when the test ends.
func NewBroker(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	b := newBroker(t, opts)
	b.start("127.0.0.1:0")
	t.Cleanup(b.Stop)
	return b
}

// newBroker makes a broker, not started, with its options applied.
func newBroker(t testing.TB, opts []Option) *Broker {
	o := options{props: map[string]string{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		level := slog.LevelWarn
		if os.Getenv("GREGOR_TEST_LOG") != "" {
			level = slog.LevelDebug
		}
		o.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	return &Broker{t: t, opts: o, Dir: t.TempDir()}
}

func (b *Broker) start(addr string) {
	b.t.Helper()
	if err := b.boot(addr); err != nil {
		b.t.Fatal(err)
	}
}

// boot is start without the test: it may run on another goroutine.
func (b *Broker) boot(addr string) error {
	b.muted = new(atomic.Bool)
	var fs vfs.FS
	if b.opts.fs != nil {
		b.power = &powerFS{fs: b.opts.fs}
		fs = b.power
	}
	cfg, _, err := config.NewBroker(b.opts.props)
	if err != nil {
		return fmt.Errorf("ktest: config: %w", err)
	}
	log := b.logger(b.muted)
	// A member of a cluster (NewCluster) listens for the other
	// controllers on its address in controller.quorum.voters.
	var controller net.Listener
	voters, _ := cfg.Voters()
	if len(voters) > 1 {
		if controller, err = listenRetry(tcpListen, voters[int32(cfg.Int("node.id"))]); err != nil {
			return fmt.Errorf("ktest: controller listener: %w", err)
		}
	}
	bopts := broker.Options{Config: cfg, DataDir: b.Dir, FS: fs, Logger: log, OpenFileLimit: b.opts.fileLimit, ControllerListener: controller}
	node := int(cfg.Int("node.id"))
	if n := b.opts.net; n != nil {
		bopts.Dial = n.dialer(node)
		if controller != nil {
			n.register(node, controller.Addr().String())
		}
	}
	br, err := broker.Open(bopts)
	if err != nil {
		return fmt.Errorf("ktest: open broker: %w", err)
	}
	sec, err := server.SecurityFromConfig(cfg, br.ScramLookup)
	if err != nil {
		br.Close()
		return fmt.Errorf("ktest: listener security: %w", err)
	}
	scfg, err := server.ConfigFrom(cfg)
	if err != nil {
		br.Close()
		return fmt.Errorf("ktest: server settings: %w", err)
	}
	scfg.Security = sec
	srv := server.New(br, scfg, log)
	// On a restart the address is known: advertise it before accepting,
	// as clients reconnect at once and must not read it while it is set.
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	if p != 0 {
		br.SetAdvertised(host, int32(p))
	}
	var l net.Listener
	// Restart reuses the port; another process may grab it in between.
	if l, err = listenRetry(srv.Listen, addr); err != nil {
		br.Close()
		return fmt.Errorf("ktest: listen: %w", err)
	}
	if lhost, lport, _ := net.SplitHostPort(l.Addr().String()); lhost != host || lport != port {
		lp, _ := strconv.Atoi(lport)
		br.SetAdvertised(lhost, int32(lp))
	}
	b.Addr = l.Addr().String()
	if b.opts.net != nil {
		b.opts.net.register(node, b.Addr)
	}
	b.B = br
	b.srv = srv
	if err := b.openListeners(cfg, br, srv); err != nil {
		return err
	}
	if controller != nil {
		if err := br.Register(); err != nil {
			return fmt.Errorf("ktest: register: %w", err)
		}
	}
	return nil
}

// logger is the test's logger, silent once muted is set.
func (b *Broker) logger(muted *atomic.Bool) *slog.Logger {
	return slog.New(&muteHandler{h: b.opts.log.Handler(), muted: muted})
}

// config is the broker configuration the test's options give.
func (b *Broker) config() *config.BrokerConfig {
	b.t.Helper()
	cfg, _, err := config.NewBroker(b.opts.props)
	if err != nil {
		b.t.Fatalf("ktest: config: %v", err)
	}
	return cfg
}

// Stop shuts the broker down gracefully. Idempotent.
func (b *Broker) Stop() {
	if b.B == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b.B.ControlledShutdown()
	b.B.Drain()
	if err := b.srv.Shutdown(ctx); err != nil {
		b.t.Errorf("ktest: shutdown: %v", err)
	}
	if err := b.B.Close(); err != nil {
		b.t.Errorf("ktest: close: %v", err)
	}
	b.B = nil
}

// Restart stops the broker gracefully and starts it again on the same
// address and data directory.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Stop()
	b.start(b.Addr)
}

// Client returns a franz-go client for the broker, closed at test end.
func (b *Broker) Client(opts ...kgo.Opt) *kgo.Client {
	b.t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(b.Addr)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		b.t.Fatalf("ktest: client: %v", err)
	}
	b.t.Cleanup(cl.Close)
	return cl
}

// Admin returns a kadm client for the broker, closed at test end.
func (b *Broker) Admin() *kadm.Client {
	b.t.Helper()
	return kadm.NewClient(b.Client())
}

// CreateTopic creates a topic with partitions and optional configs.
func (b *Broker) CreateTopic(topic string, partitions int32, configs map[string]*string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := b.Admin().CreateTopic(ctx, partitions, 1, configs, topic)
	if err != nil {
		b.t.Fatalf("ktest: create topic %q: %v", topic, err)
	}
	if resp.Err != nil {
		b.t.Fatalf("ktest: create topic %q: %v", topic, resp.Err)
	}
}

// AddListener opens another listener on a free loopback port, named name
// with security sec (server.SecurityFor), advertised as its own address
// to the clients connecting through it, and returns that address. A
// Restart does not reopen it.
func (b *Broker) AddListener(name string, sec server.Security) string {
	b.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.t.Fatalf("ktest: listen: %v", err)
	}
	host, port, _ := net.SplitHostPort(l.Addr().String())
	p, _ := strconv.Atoi(port)
	b.B.SetListenerAdvertised(name, host, int32(p))
	if err := b.srv.ServeListener(l, name, sec); err != nil {
		l.Close()
		b.t.Fatalf("ktest: serve listener %s: %v", name, err)
	}
	return l.Addr().String()
}

// open boots a single node on fs (nil: the OS's) with the test's data
// directory.
func (b *Broker) open(cfg *config.BrokerConfig, fs vfs.FS, log *slog.Logger) (*broker.Broker, error) {
	return broker.Open(broker.Options{Config: cfg, DataDir: b.Dir, FS: fs, Logger: log, OpenFileLimit: b.opts.fileLimit})
}
