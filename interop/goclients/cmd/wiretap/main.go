// Command wiretap is a transparent TCP proxy in front of a broker that
// records which (client ID, API key, version) each request uses, so the
// interop suite can show exactly what every client sends. The broker
// advertises the proxy's address, so all of a client's connections,
// not only the bootstrap one, pass through it.
//
//	wiretap serve -listen 127.0.0.1:0 -addr-file F -upstream-file U -out T
//	wiretap report -broker ADDR -in T
//	wiretap groups -broker ADDR
//	wiretap idempotence -broker ADDR
//
// serve writes its bound address to F, then reads the broker's address
// from U when the first client connects (the broker is started after the
// proxy, with --advertise set to the proxy, and binds a port of its own).
// report prints one Markdown row per client ID, marking versions the
// broker does not advertise with "!". groups (idempotence) exits 0 when
// the broker advertises consumer groups (InitProducerID) and 3 when it
// does not, for the shell cases and run.sh's consistency check.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/interop/goclients/probe"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: wiretap serve|report [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "report":
		err = report(os.Args[2:])
	case "groups":
		fs := flag.NewFlagSet("groups", flag.ExitOnError)
		broker := fs.String("broker", "", "broker HOST:PORT")
		fs.Parse(os.Args[2:])
		var ok bool
		if ok, err = probe.Groups(*broker); err == nil && !ok {
			os.Exit(3)
		}
	case "idempotence":
		fs := flag.NewFlagSet("idempotence", flag.ExitOnError)
		broker := fs.String("broker", "", "broker HOST:PORT")
		fs.Parse(os.Args[2:])
		var ok bool
		if ok, err = probe.Idempotence(*broker); err == nil && !ok {
			os.Exit(3)
		}
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wiretap:", err)
		os.Exit(1)
	}
}

type tuple struct {
	client  string
	key     int16
	version int16
}

type recorder struct {
	mu   sync.Mutex
	seen map[tuple]bool
	out  *os.File
}

func (r *recorder) record(t tuple) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[t] {
		return
	}
	r.seen[t] = true
	fmt.Fprintf(r.out, "%s\t%d\t%d\n", t.client, t.key, t.version)
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	addrFile := fs.String("addr-file", "", "file to write the bound address to")
	upstreamFile := fs.String("upstream-file", "", "file holding the broker's HOST:PORT")
	outPath := fs.String("out", "", "TSV of client ID, API key, version")
	fs.Parse(args)
	out, err := os.OpenFile(*outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	rec := &recorder{seen: map[tuple]bool{}, out: out}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	// Write to a temp file and rename, so a reader never sees half an
	// address.
	if err := os.WriteFile(*addrFile+".tmp", []byte(l.Addr().String()), 0o644); err != nil {
		return err
	}
	if err := os.Rename(*addrFile+".tmp", *addrFile); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; l.Close() }()
	var wg sync.WaitGroup
	var connsMu sync.Mutex
	conns := map[net.Conn]bool{}
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				break
			}
			return err
		}
		connsMu.Lock()
		conns[c] = true
		connsMu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			proxy(c, *upstreamFile, rec)
			connsMu.Lock()
			delete(conns, c)
			connsMu.Unlock()
		}()
	}
	connsMu.Lock()
	for c := range conns {
		c.Close()
	}
	connsMu.Unlock()
	wg.Wait()
	return nil
}

func proxy(c net.Conn, upstreamFile string, rec *recorder) {
	defer c.Close()
	b, err := os.ReadFile(upstreamFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wiretap: upstream:", err)
		return
	}
	u, err := net.Dial("tcp", strings.TrimSpace(string(b)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "wiretap: dial upstream:", err)
		return
	}
	defer u.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(c, u)
		c.Close()
		close(done)
	}()
	requests(c, u, rec)
	u.Close()
	<-done
}

// requests copies request frames from c to u, recording each header.
func requests(c, u net.Conn, rec *recorder) {
	r := bufio.NewReaderSize(c, 64<<10)
	var size [4]byte
	for {
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(size[:])
		if n > 256<<20 {
			return
		}
		frame := make([]byte, 4+n)
		copy(frame, size[:])
		if _, err := io.ReadFull(r, frame[4:]); err != nil {
			return
		}
		if n >= 10 {
			h := frame[4:]
			t := tuple{key: int16(binary.BigEndian.Uint16(h)), version: int16(binary.BigEndian.Uint16(h[2:]))}
			// Client ID: nullable int16-length string after the
			// correlation ID, in every request header version.
			if l := int16(binary.BigEndian.Uint16(h[8:])); l > 0 && 10+int(l) <= len(h) {
				t.client = string(h[10 : 10+int(l)])
			}
			if t.client == "" {
				t.client = "-"
			}
			rec.record(t)
		}
		if _, err := u.Write(frame); err != nil {
			return
		}
	}
}

func report(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	broker := fs.String("broker", "", "broker HOST:PORT to compare with its ApiVersions")
	in := fs.String("in", "", "TSV written by serve")
	fs.Parse(args)
	advertised, err := probe.ApiVersions(*broker)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	// client → key → versions
	used := map[string]map[int16][]int16{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 || f[0] == "interop-probe" { // our own gating probe
			continue
		}
		k, _ := strconv.Atoi(f[1])
		v, _ := strconv.Atoi(f[2])
		if used[f[0]] == nil {
			used[f[0]] = map[int16][]int16{}
		}
		used[f[0]][int16(k)] = append(used[f[0]][int16(k)], int16(v))
	}
	clients := make([]string, 0, len(used))
	for c := range used {
		clients = append(clients, c)
	}
	slices.Sort(clients)
	fmt.Println("| client ID | API versions sent (! = outside the advertised range) |")
	fmt.Println("|---|---|")
	for _, c := range clients {
		keys := make([]int16, 0, len(used[c]))
		for k := range used[c] {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			vs := used[c][k]
			slices.Sort(vs)
			var s []string
			for _, v := range vs {
				mark := ""
				if r, ok := advertised[k]; !ok || v < r.Min || v > r.Max {
					mark = "!"
				}
				s = append(s, fmt.Sprintf("%d%s", v, mark))
			}
			parts = append(parts, fmt.Sprintf("%s %s", kmsg.NameForKey(k), strings.Join(s, "/")))
		}
		fmt.Printf("| %s | %s |\n", c, strings.Join(parts, ", "))
	}
	return nil
}
