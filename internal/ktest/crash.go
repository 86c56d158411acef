package ktest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gregor-streaming/gregor/internal/broker"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// Crash simulates a power loss and reboot: the broker is abandoned
// without closing anything, only what it had synced survives
// (vfs.MemFS.Crash), and a new broker recovers from that on the same
// address. The broker must run on a *vfs.MemFS (WithFS).
//
// From the instant of the crash on, the old broker's file system calls
// fail (EIO), so nothing it syncs afterwards is acknowledged as durable:
// every acknowledgement a client saw before Crash returned is for data
// in the crashed file system.
func (b *Broker) Crash() { b.CrashWith(vfs.CrashOptions{}) }

// CrashWith is Crash with the random outcomes of opts (torn tails,
// unsynced directory entries that reached the disk anyway).
func (b *Broker) CrashWith(opts vfs.CrashOptions) {
	b.t.Helper()
	b.PowerOff(opts)
	b.Start()
}

// PowerOff is CrashWith without the reboot: the broker stays down, FS
// returns what survived (to inspect or damage it) and Start boots it.
func (b *Broker) PowerOff(opts vfs.CrashOptions) {
	b.t.Helper()
	mem, ok := b.opts.fs.(*vfs.MemFS)
	if !ok {
		b.t.Fatalf("ktest: PowerOff needs a *vfs.MemFS (WithFS), have %T", b.opts.fs)
	}
	var crashed *vfs.MemFS
	b.halt(func() { crashed = mem.CrashWith(opts) })
	b.opts.fs = crashed
}

// CrashDuringRecovery cuts the power of the running broker (PowerOff
// with first), boots it, stops that boot after d, while it may still
// be recovering, keeping what second leaves of the file system (for
// example a CrashWith, or MemFS.Kill for a process crash), and boots
// once more. What the interrupted boot wrote without syncing (truncated
// torn tails, replayed journal entries, rebuilt indexes) is then lost,
// torn or left unsynced, and no acknowledged record may go with it. It
// reports whether the stop came before the boot had finished opening.
func (b *Broker) CrashDuringRecovery(first vfs.CrashOptions, d time.Duration, second func(*vfs.MemFS) *vfs.MemFS) (interrupted bool) {
	b.t.Helper()
	b.PowerOff(first)
	mem := b.opts.fs.(*vfs.MemFS)
	p := &powerFS{fs: mem}
	muted := new(atomic.Bool)
	muted.Store(true) // a boot on a dying disk complains; that is the point
	cfg, log := b.config(), b.logger(muted)
	opened := make(chan *broker.Broker, 1) // nil when the boot failed
	go func() {
		br, _ := b.open(cfg, p, log)
		opened <- br
	}()
	time.Sleep(d)
	var crashed *vfs.MemFS
	var br *broker.Broker
	p.off(func() {
		select {
		case br = <-opened:
		default:
			interrupted = true
		}
		crashed = second(mem)
	})
	if interrupted {
		br = <-opened
	}
	if br != nil {
		_ = br.Close()
	}
	b.opts.fs = crashed
	b.Start()
	return interrupted
}

// Kill simulates kill -9 of the broker's process and a restart: the
// broker is abandoned without closing anything, every byte it wrote
// survives whether synced or not (as the page cache does when only the
// process dies), and a new broker recovers from the same files on the
// same address. Needs WithFS (any file system, the OS's included).
func (b *Broker) Kill() {
	b.t.Helper()
	if b.opts.fs == nil {
		b.t.Fatal("ktest: Kill needs WithFS (pass vfs.Default for the OS)")
	}
	b.halt(func() {})
	b.Start()
}

// Start starts a broker that was stopped (Stop, PowerOff) on the same
// address, data directory and file system.
func (b *Broker) Start() {
	b.t.Helper()
	if b.B != nil {
		b.t.Fatal("ktest: Start: the broker is running")
	}
	b.start(b.Addr)
}

// FS is the file system the broker runs on (nil for the OS by default).
// After PowerOff or Crash it is the crashed copy.
func (b *Broker) FS() vfs.FS { return b.opts.fs }

// halt cuts the running broker off from its file system, atomically with
// snapshot (which sees the state at the instant of the cut), then tears
// the abandoned broker down. Its shutdown writes fail, so they change
// nothing that survives.
func (b *Broker) halt(snapshot func()) {
	b.t.Helper()
	if b.B == nil {
		b.t.Fatal("ktest: the broker is not running")
	}
	if b.power == nil {
		b.t.Fatal("ktest: the broker does not run on a crashable file system (WithFS)")
	}
	// The abandoned broker's complaints about its dead disk are noise.
	b.muted.Store(true)
	b.power.off(snapshot)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // close connections at once: a dead machine answers nothing
	b.B.Drain()
	_ = b.srv.Shutdown(ctx)
	_ = b.B.CloseAbruptly() // a dead machine moves nothing away
	b.B, b.srv, b.power = nil, nil, nil
}

// Halt simulates kill -9 of the broker's process without the restart
// (Kill): its written bytes stay, its leaderships stay until the
// cluster's controller finds it gone; Start boots it again. Needs
// WithFS.
func (b *Broker) Halt() {
	b.t.Helper()
	if b.opts.fs == nil {
		b.t.Fatal("ktest: Halt needs WithFS (pass vfs.Default for the OS)")
	}
	b.halt(func() {})
}

// errPowerOff is what file system calls of a halted broker get.
var errPowerOff = fmt.Errorf("ktest: machine is down: %w", syscall.EIO)

// powerFS passes calls to fs until off, then fails them all. off waits
// for calls in progress, so a call either completed before the cut (and
// the snapshot sees it) or fails.
type powerFS struct {
	// mu is held shared by every call, exclusively by off.
	mu   sync.RWMutex
	down bool
	fs   vfs.FS
}

func (p *powerFS) off(snapshot func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	snapshot()
}

// call runs fn unless the power is off.
func (p *powerFS) call(fn func() error) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.down {
		return errPowerOff
	}
	return fn()
}

func (p *powerFS) open(fn func() (vfs.File, error)) (vfs.File, error) {
	var f vfs.File
	err := p.call(func() (err error) {
		f, err = fn()
		return err
	})
	if err != nil {
		return nil, err
	}
	return &powerFile{p: p, f: f}, nil
}

func (p *powerFS) Create(name string) (vfs.File, error) {
	return p.open(func() (vfs.File, error) { return p.fs.Create(name) })
}

func (p *powerFS) OpenAppend(name string) (vfs.File, error) {
	return p.open(func() (vfs.File, error) { return p.fs.OpenAppend(name) })
}

func (p *powerFS) OpenWrite(name string) (vfs.File, error) {
	return p.open(func() (vfs.File, error) { return p.fs.OpenWrite(name) })
}

func (p *powerFS) Open(name string) (vfs.File, error) {
	return p.open(func() (vfs.File, error) { return p.fs.Open(name) })
}

func (p *powerFS) Remove(name string) error {
	return p.call(func() error { return p.fs.Remove(name) })
}

func (p *powerFS) RemoveAll(name string) error {
	return p.call(func() error { return p.fs.RemoveAll(name) })
}

func (p *powerFS) Rename(oldname, newname string) error {
	return p.call(func() error { return p.fs.Rename(oldname, newname) })
}

func (p *powerFS) MkdirAll(dir string) error {
	return p.call(func() error { return p.fs.MkdirAll(dir) })
}

func (p *powerFS) List(dir string) (names []string, err error) {
	err = p.call(func() error {
		names, err = p.fs.List(dir)
		return err
	})
	return names, err
}

func (p *powerFS) Stat(name string) (fi vfs.FileInfo, err error) {
	err = p.call(func() error {
		fi, err = p.fs.Stat(name)
		return err
	})
	return fi, err
}

func (p *powerFS) SyncDir(dir string) error {
	return p.call(func() error { return p.fs.SyncDir(dir) })
}

type powerFile struct {
	p *powerFS
	f vfs.File
}

func (f *powerFile) Read(b []byte) (n int, err error) {
	err = f.p.call(func() error {
		n, err = f.f.Read(b)
		return err
	})
	return n, err
}

func (f *powerFile) ReadAt(b []byte, off int64) (n int, err error) {
	err = f.p.call(func() error {
		n, err = f.f.ReadAt(b, off)
		return err
	})
	return n, err
}

func (f *powerFile) Write(b []byte) (n int, err error) {
	err = f.p.call(func() error {
		n, err = f.f.Write(b)
		return err
	})
	return n, err
}

func (f *powerFile) WriteAt(b []byte, off int64) (n int, err error) {
	err = f.p.call(func() error {
		n, err = f.f.WriteAt(b, off)
		return err
	})
	return n, err
}

func (f *powerFile) Preallocate(size int64) error {
	pa, ok := f.f.(vfs.Preallocator)
	if !ok {
		return errors.ErrUnsupported
	}
	return f.p.call(func() error { return pa.Preallocate(size) })
}

func (f *powerFile) Sync() error { return f.p.call(f.f.Sync) }

func (f *powerFile) Truncate(size int64) error {
	return f.p.call(func() error { return f.f.Truncate(size) })
}

func (f *powerFile) Size() (n int64, err error) {
	err = f.p.call(func() error {
		n, err = f.f.Size()
		return err
	})
	return n, err
}

// Close always closes the underlying file: it changes nothing durable,
// and the OS's descriptors must not leak.
func (f *powerFile) Close() error { return f.f.Close() }

// muteHandler drops records once muted, except handler panics, which
// are bugs whatever state the machine is in.
type muteHandler struct {
	h     slog.Handler
	muted *atomic.Bool
}

func (m *muteHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return m.h.Enabled(ctx, l)
}

func (m *muteHandler) Handle(ctx context.Context, r slog.Record) error {
	if m.muted.Load() && r.Message != "handler panic" {
		return nil
	}
	return m.h.Handle(ctx, r)
}

func (m *muteHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &muteHandler{h: m.h.WithAttrs(as), muted: m.muted}
}

func (m *muteHandler) WithGroup(name string) slog.Handler {
	return &muteHandler{h: m.h.WithGroup(name), muted: m.muted}
}
