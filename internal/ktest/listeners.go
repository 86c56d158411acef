package ktest

import (
	"fmt"
	"net"
	"strconv"

	"github.com/gregor-streaming/gregor/internal/broker"
	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/server"
)

// OnNode applies opts only to the broker of node.id id: in NewCluster,
// where the options are every broker's, one broker's settings (its own
// certificate, say) differ.
func OnNode(id int, opts ...Option) Option {
	return func(o *options) {
		if o.props["node.id"] != strconv.Itoa(id) {
			return
		}
		for _, opt := range opts {
			opt(o)
		}
	}
}

// openListeners opens the client listeners of listeners after the first
// (which boot serves at Addr) on free loopback ports, named and secured
// as configured, each advertised as its own address to its clients and
// registered with them (Register), as gregor serve does: so a cluster's
// inter.broker.listener.name may name one. Their addresses are in
// Listeners, by name.
func (b *Broker) openListeners(cfg *config.BrokerConfig, br *broker.Broker, srv *server.Server) error {
	ls, ok, err := cfg.Listeners()
	if err != nil || !ok || len(ls) < 2 {
		return err
	}
	b.Listeners = map[string]string{}
	for _, l := range ls[1:] {
		sec, err := server.SecurityFor(cfg, l, br.ScramLookup)
		if err != nil {
			return fmt.Errorf("ktest: listener %s: %w", l.Name, err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("ktest: listener %s: %w", l.Name, err)
		}
		host, port, _ := net.SplitHostPort(ln.Addr().String())
		p, _ := strconv.Atoi(port)
		br.SetListenerAdvertised(l.Name, host, int32(p))
		if err := srv.ServeListener(ln, l.Name, sec); err != nil {
			ln.Close()
			return fmt.Errorf("ktest: listener %s: %w", l.Name, err)
		}
		b.Listeners[l.Name] = ln.Addr().String()
		if b.opts.net != nil {
			b.opts.net.register(int(cfg.Int("node.id")), ln.Addr().String())
		}
	}
	return nil
}
