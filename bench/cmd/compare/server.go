package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregor-streaming/gregor/bench/internal/load"
)

// server is a broker child process.
type server struct {
	name    string
	bin     string
	args    []string
	addr    string // Kafka listener HOST:PORT
	admin   string // admin base URL
	logPath string
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// newGregor describes `gregor serve` on fresh loopback ports with pprof on
// its admin port.
func newGregor(bin, dataDir, logPath string, extra []string) (*server, error) {
	p, err := freePort()
	if err != nil {
		return nil, err
	}
	ap, err := freePort()
	if err != nil {
		return nil, err
	}
	addr, admin := fmt.Sprintf("127.0.0.1:%d", p), fmt.Sprintf("127.0.0.1:%d", ap)
	args := append([]string{"serve", "--listen", addr, "--data-dir", dataDir,
		"--admin-listen", admin, "--pprof", "--log-level", "warn"}, extra...)
	return &server{name: "gregor", bin: bin, args: args, addr: addr, admin: "http://" + admin, logPath: logPath}, nil
}

// newKfake describes kfakeserver on fresh loopback ports.
func newKfake(bin, logPath string) (*server, error) {
	p, err := freePort()
	if err != nil {
		return nil, err
	}
	ap, err := freePort()
	if err != nil {
		return nil, err
	}
	addr, admin := fmt.Sprintf("127.0.0.1:%d", p), fmt.Sprintf("127.0.0.1:%d", ap)
	return &server{name: "kfake", bin: bin, args: []string{"--listen", addr, "--admin-listen", admin},
		addr: addr, admin: "http://" + admin, logPath: logPath}, nil
}

// start execs the process; it does not wait for it to be ready.
func (s *server) start() error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== %s %s %s\n", time.Now().Format(time.RFC3339), filepath.Base(s.bin), strings.Join(s.args, " "))
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// Its own process group, so a Ctrl-C of compare reaches it only
	// through our shutdown path.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.started = time.Now()
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	s.exited = make(chan struct{})
	go func() {
		s.cmd.Wait()
		logf.Close()
		close(s.exited)
	}()
	return nil
}

func (s *server) target() load.Target {
	return load.Target{Name: s.name, Addr: s.addr, PID: s.cmd.Process.Pid, Admin: s.admin}
}

// waitReady waits until the broker answers Metadata.
func (s *server) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited during start-up: see %s", s.name, s.logPath)
		default:
		}
		if err := ping(ctx, s.addr); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %w", s.name, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ping(ctx context.Context, addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0))
	if err != nil {
		return err
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return cl.Ping(pctx)
}

// stopTimeout bounds an orderly shutdown: Gregor with 10,000 partitions
// has taken a minute on a machine whose disk neighbours keep busy.
const stopTimeout = 3 * time.Minute

// stop sends SIGTERM, waits up to stopTimeout, then SIGKILL; it returns
// how long the orderly shutdown took.
func (s *server) stop() (time.Duration, error) {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0, nil
	}
	select {
	case <-s.exited:
		return 0, errors.New(s.name + " had already exited")
	default:
	}
	t0 := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return time.Since(t0), nil
	case <-time.After(stopTimeout):
		s.cmd.Process.Kill()
		<-s.exited
		return time.Since(t0), fmt.Errorf("%s ignored SIGTERM for %s; killed", s.name, stopTimeout)
	}
}

// kill ends the process at once (used on interrupts).
func (s *server) kill() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		s.cmd.Process.Kill()
		<-s.exited
	}
}
