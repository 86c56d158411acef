// Command kfakeserver runs franz-go's kfake, an in-memory Kafka-compatible
// broker, as a single-broker cluster in its own process, so the benchmark
// can read its CPU and memory from /proc exactly as it reads Gregor's.
//
//	kfakeserver --listen 127.0.0.1:9192 --admin-listen 127.0.0.1:9744
//
// The admin address serves /readyz and Go's /debug/pprof/ (heap readings
// and profiles), like `gregor serve --pprof`.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9192", "Kafka listener HOST:PORT (port 0 picks one)")
	admin := flag.String("admin-listen", "", "HTTP address for /readyz and /debug/pprof/; empty disables it")
	flag.Parse()

	host, port, err := net.SplitHostPort(*listen)
	if err != nil {
		fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		fatal(err)
	}
	// kfake listens on 127.0.0.1 for a given port; ListenFn keeps the
	// host we were asked for.
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(p),
		kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			_, ap, _ := net.SplitHostPort(addr)
			return net.Listen(network, net.JoinHostPort(host, ap))
		}),
		kfake.AllowAutoTopicCreation(),
	)
	if err != nil {
		fatal(err)
	}
	if *admin != "" {
		http.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		l, err := net.Listen("tcp", *admin)
		if err != nil {
			fatal(err)
		}
		go http.Serve(l, nil)
	}
	fmt.Println("kfake listening", c.ListenAddrs()[0])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	c.Close()
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "kfakeserver:", err)
	os.Exit(1)
}
