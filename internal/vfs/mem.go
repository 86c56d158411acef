package vfs

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// MemFS is an in-memory FS that remembers what a crash would keep.
//
// It behaves like the OS file system as seen through Default: Create
// truncates; writes through a Create or OpenAppend handle always go to the
// end of the file; Open is read-only and writes through it fail with
// EBADF; ReadAt past the end returns io.EOF like *os.File; errors are
// *os.PathError or *os.LinkError around the same syscall.Errno the OS
// returns (ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY, EBADF, EINVAL), so
// errors.Is(err, os.ErrNotExist) and os.ErrExist work. There is one root
// and no working directory: "a/b", "/a/b" and "./a/b" name the same file.
// Deliberate differences: Open of a directory fails with EISDIR, and there
// are no permissions, links or timestamps.
//
// # Durability
//
// Like Pebble's strict MemFS, each file keeps two contents, the current
// one and the one as of its last File.Sync, and each directory keeps two
// entry sets, the current one and the one as of its last SyncDir. An entry
// is a name bound to a file or directory (an inode): a rename or removal
// changes entries, not files, so an open handle keeps working on a file
// that has been renamed or removed, as on Linux.
//
// Crash returns a new MemFS holding exactly what was durable:
//
//   - The root directory always survives.
//   - A directory's entries are those it had at its last SyncDir (none if
//     it was never synced). So a file or directory created, renamed in or
//     removed since the last SyncDir of its parent is, after the crash,
//     absent, back at its old name, or back, respectively; and a new
//     directory from MkdirAll survives only if its parent was synced after
//     it was created.
//   - A surviving file holds the content of its last Sync (empty if it was
//     never synced): appends, truncations and the truncation done by
//     Create since then are undone.
//   - An entry made durable by SyncDir refers to the file itself, not to a
//     copy: the file's content is what the file's own Sync made durable,
//     before or after the SyncDir.
//   - A rename between two directories is durable in each directory
//     separately: syncing only the target may leave the file under both
//     names after a crash, syncing only the source under neither.
//
// CrashWith adds the random outcomes a real crash may have on top of that:
// torn tails (part of the unsynced appended bytes survive) and unsynced
// directory changes that happened to reach the disk.
//
// MemFS is safe for concurrent use; one mutex serializes every operation,
// which is fine for tests.
type MemFS struct {
	// mu guards every node reachable from root and every memFile's
	// mutable fields.
	mu sync.Mutex
	// root is the root directory. Immutable; never nil.
	root *memNode
}

// memNode is an inode: a directory or a regular file.
type memNode struct {
	isDir bool

	// Directory fields.
	//
	// children are the current entries; syncedChildren the entries as of
	// the last SyncDir (nil: never synced, i.e. no durable entries).
	children       map[string]*memNode
	syncedChildren map[string]*memNode

	// File fields.
	//
	// data is the current content, syncedData the content as of the last
	// Sync. Invariant: syncedData is never written through: its capacity
	// equals its length, and Truncate copies instead of shrinking data in
	// place, so data and syncedData may share a backing array and appends
	// to data never touch bytes that syncedData sees.
	data       []byte
	syncedData []byte
	// reserved is how many zero bytes follow data (Preallocate, or
	// Truncate growing the file): the file is len(data)+reserved bytes
	// long. syncedReserved is its value as of the last Sync.
	reserved, syncedReserved int64
}

// size is a file's length. The caller holds MemFS.mu.
func (n *memNode) size() int64 { return int64(len(n.data)) + n.reserved }

// readAt copies the file's bytes from off into p (zeros past data) and
// returns how many there were. The caller holds MemFS.mu.
func (n *memNode) readAt(p []byte, off int64) int {
	if off >= n.size() {
		return 0
	}
	c := 0
	if off < int64(len(n.data)) {
		c = copy(p, n.data[off:])
	}
	z := min(int64(len(p)-c), n.size()-off-int64(c))
	clear(p[c : c+int(z)])
	return c + int(z)
}

// materialize turns the reserved zeros below end into data, so writes
// can go there. The caller holds MemFS.mu.
func (n *memNode) materialize(end int64) {
	if grow := min(end, n.size()) - int64(len(n.data)); grow > 0 {
		n.data = append(n.data, make([]byte, grow)...)
		n.reserved -= grow
	}
}

func newDir() *memNode { return &memNode{isDir: true, children: map[string]*memNode{}} }

// NewMem returns an empty in-memory file system.
func NewMem() *MemFS { return &MemFS{root: newDir()} }

// split cleans name into its path components from the root; the root
// itself has none.
func split(name string) []string {
	p := path.Clean("/" + name)
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

// walkLocked returns the node at the given components.
func (fs *MemFS) walkLocked(parts []string) (*memNode, syscall.Errno) {
	n := fs.root
	for _, p := range parts {
		if !n.isDir {
			return nil, syscall.ENOTDIR
		}
		c, ok := n.children[p]
		if !ok {
			return nil, syscall.ENOENT
		}
		n = c
	}
	return n, 0
}

// parentLocked returns the directory that holds name and name's last
// component. The root has no parent: it reports EINVAL.
func (fs *MemFS) parentLocked(name string) (*memNode, string, syscall.Errno) {
	parts := split(name)
	if len(parts) == 0 {
		return nil, "", syscall.EINVAL
	}
	dir, errno := fs.walkLocked(parts[:len(parts)-1])
	if errno != 0 {
		return nil, "", errno
	}
	if !dir.isDir {
		return nil, "", syscall.ENOTDIR
	}
	return dir, parts[len(parts)-1], 0
}

func pathErr(op, name string, errno syscall.Errno) error {
	return &os.PathError{Op: op, Path: name, Err: errno}
}

// openFile implements Create, OpenAppend, OpenWrite and Open. Writable
// handles create a missing file; Open's fail.
func (fs *MemFS) openFile(name string, writable, truncate, appends bool) (File, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	dir, base, errno := fs.parentLocked(name)
	if errno == syscall.EINVAL {
		errno = syscall.EISDIR // the root
	}
	if errno != 0 {
		return nil, pathErr("open", name, errno)
	}
	n, ok := dir.children[base]
	switch {
	case ok && n.isDir:
		return nil, pathErr("open", name, syscall.EISDIR)
	case !ok && !writable:
		return nil, pathErr("open", name, syscall.ENOENT)
	case !ok:
		n = &memNode{}
		dir.children[base] = n
	case truncate:
		n.data, n.reserved = nil, 0
	}
	return &memFile{fs: fs, node: n, name: name, writable: writable, appends: appends}, nil
}

// Create implements FS.
func (fs *MemFS) Create(name string) (File, error) { return fs.openFile(name, true, true, true) }

// OpenAppend implements FS.
func (fs *MemFS) OpenAppend(name string) (File, error) {
	return fs.openFile(name, true, false, true)
}

// OpenWrite implements FS.
func (fs *MemFS) OpenWrite(name string) (File, error) {
	return fs.openFile(name, true, false, false)
}

// Open implements FS.
func (fs *MemFS) Open(name string) (File, error) { return fs.openFile(name, false, false, false) }

// Remove implements FS.
func (fs *MemFS) Remove(name string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	dir, base, errno := fs.parentLocked(name)
	if errno == syscall.EINVAL {
		errno = syscall.EBUSY // the root
	}
	if errno != 0 {
		return pathErr("remove", name, errno)
	}
	n, ok := dir.children[base]
	if !ok {
		return pathErr("remove", name, syscall.ENOENT)
	}
	if n.isDir && len(n.children) > 0 {
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	delete(dir.children, base)
	return nil
}

// RemoveAll implements FS. Like os.RemoveAll it succeeds when name does
// not exist. RemoveAll of the root removes all its entries.
func (fs *MemFS) RemoveAll(name string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	dir, base, errno := fs.parentLocked(name)
	switch errno {
	case 0:
		delete(dir.children, base)
		return nil
	case syscall.EINVAL:
		clear(fs.root.children)
		return nil
	case syscall.ENOENT:
		return nil
	default:
		return pathErr("unlinkat", name, errno)
	}
}

// Rename implements FS with os.Rename's rules: newname is replaced if it is
// a file; an existing directory at newname is EEXIST; a directory cannot
// replace a file (ENOTDIR) nor move below itself (EINVAL).
func (fs *MemFS) Rename(oldname, newname string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	linkErr := func(errno syscall.Errno) error {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: errno}
	}
	odir, obase, errno := fs.parentLocked(oldname)
	if errno != 0 {
		return linkErr(errno)
	}
	n, ok := odir.children[obase]
	if !ok {
		return linkErr(syscall.ENOENT)
	}
	ndir, nbase, errno := fs.parentLocked(newname)
	if errno != 0 {
		return linkErr(errno)
	}
	if t, ok := ndir.children[nbase]; ok {
		switch {
		case t == n:
			return nil
		case t.isDir:
			return linkErr(syscall.EEXIST)
		case n.isDir:
			return linkErr(syscall.ENOTDIR)
		}
	}
	if n.isDir {
		op, np := split(oldname), split(newname)
		if len(np) > len(op) && slices.Equal(np[:len(op)], op) {
			return linkErr(syscall.EINVAL)
		}
	}
	ndir.children[nbase] = n
	delete(odir.children, obase)
	return nil
}

// MkdirAll implements FS.
func (fs *MemFS) MkdirAll(dir string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := fs.root
	for _, p := range split(dir) {
		c, ok := n.children[p]
		if !ok {
			c = newDir()
			n.children[p] = c
		} else if !c.isDir {
			return pathErr("mkdir", dir, syscall.ENOTDIR)
		}
		n = c
	}
	return nil
}

// List implements FS.
func (fs *MemFS) List(dir string) ([]string, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n, errno := fs.walkLocked(split(dir))
	if errno == 0 && !n.isDir {
		errno = syscall.ENOTDIR
	}
	if errno != 0 {
		return nil, pathErr("open", dir, errno)
	}
	return slices.Sorted(maps.Keys(n.children)), nil
}

// Stat implements FS. A directory's size is 0.
func (fs *MemFS) Stat(name string) (FileInfo, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n, errno := fs.walkLocked(split(name))
	if errno != 0 {
		return FileInfo{}, pathErr("stat", name, errno)
	}
	if n.isDir {
		return FileInfo{IsDir: true}, nil
	}
	return FileInfo{Size: n.size()}, nil
}

// SyncDir implements FS: dir's current entries become its durable ones.
// Like fsync on a file's descriptor, SyncDir of a file syncs its data.
func (fs *MemFS) SyncDir(dir string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n, errno := fs.walkLocked(split(dir))
	if errno != 0 {
		return pathErr("open", dir, errno)
	}
	n.syncLocked()
	return nil
}

func (n *memNode) syncLocked() {
	if n.isDir {
		n.syncedChildren = maps.Clone(n.children)
		return
	}
	n.syncedData = n.data[:len(n.data):len(n.data)]
	n.syncedReserved = n.reserved
}

// CrashOptions chooses the random outcomes of CrashWith.
type CrashOptions struct {
	// Rand draws the random choices. Nil means none are made: the crash
	// keeps exactly the durable state, as Crash does.
	Rand *rand.Rand
	// TornTails keeps, for each file whose current content is its synced
	// content followed by unsynced appends, a random prefix (possibly
	// empty, possibly all) of those appended bytes: the pages the kernel
	// happened to write back before the crash. A file truncated below its
	// synced content since its last Sync gets its synced content back.
	TornTails bool
	// TornWrites keeps, for each file whose current content differs
	// from its synced content other than by appends (writes in place),
	// each 512-byte sector of the synced length from either content at
	// random, as a disk that writes sectors atomically but in no order
	// would; bytes past the synced length follow TornTails, or are lost.
	TornWrites bool
	// TornWriteUnit, if positive, replaces the 512-byte sector of
	// TornWrites: smaller units tear what one sector would hold.
	TornWriteUnit int
	// UnsyncedDirs gives each directory whose entries changed since its
	// last SyncDir an even chance to keep all its current entries instead
	// of its synced ones, as if the kernel wrote the directory back on its
	// own. The choice is per directory, not per entry.
	UnsyncedDirs bool
}

// Crash returns a new MemFS holding only what was durable in fs: synced
// directory entries and synced file content (see MemFS). fs itself is
// unchanged and stays usable, and handles open on it stay bound to it.
func (fs *MemFS) Crash() *MemFS { return fs.CrashWith(CrashOptions{}) }

// CrashWithTornTails is Crash, except that each file keeps a random prefix
// of the bytes appended since its last Sync (see CrashOptions.TornTails).
func (fs *MemFS) CrashWithTornTails(rng *rand.Rand) *MemFS {
	return fs.CrashWith(CrashOptions{Rand: rng, TornTails: true})
}

// CrashWith is Crash with the random outcomes opts enables.
func (fs *MemFS) CrashWith(opts CrashOptions) *MemFS {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	c := crasher{opts: opts, seen: map[*memNode]*memNode{}}
	root := newDir()
	for name, child := range c.entries(fs.root) {
		root.children[name] = c.clone(child)
	}
	root.syncedChildren = maps.Clone(root.children)
	return &MemFS{root: root}
}

// Kill returns a new MemFS holding what a process crash (kill -9) leaves
// of fs: every write, synced or not, since the page cache keeps them,
// each still as durable as it was (a later Crash of the copy drops what
// was never synced). Handles open on fs stay bound to fs.
func (fs *MemFS) Kill() *MemFS {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	seen := map[*memNode]*memNode{}
	var clone func(n *memNode) *memNode
	clone = func(n *memNode) *memNode {
		if m, ok := seen[n]; ok {
			return m
		}
		m := &memNode{isDir: n.isDir}
		seen[n] = m
		if !n.isDir {
			// Both slices are never written through (see memNode).
			m.data = n.data[:len(n.data):len(n.data)]
			m.syncedData = n.syncedData
			m.reserved, m.syncedReserved = n.reserved, n.syncedReserved
			return m
		}
		m.children = map[string]*memNode{}
		for name, c := range n.children {
			m.children[name] = clone(c)
		}
		if n.syncedChildren != nil {
			m.syncedChildren = map[string]*memNode{}
			for name, c := range n.syncedChildren {
				m.syncedChildren[name] = clone(c)
			}
		}
		return m
	}
	return &MemFS{root: clone(fs.root)}
}

// crasher copies the durable state of a tree. seen maps old nodes to their
// copies so a node reachable under two names (a rename between two
// directories only partly synced) stays one node.
type crasher struct {
	opts CrashOptions
	seen map[*memNode]*memNode
}

// entries are the entries of dir that survive.
func (c *crasher) entries(dir *memNode) map[string]*memNode {
	if c.opts.UnsyncedDirs && c.opts.Rand != nil &&
		!maps.Equal(dir.children, dir.syncedChildren) && c.opts.Rand.IntN(2) == 0 {
		return dir.children
	}
	return dir.syncedChildren
}

func (c *crasher) clone(n *memNode) *memNode {
	if m, ok := c.seen[n]; ok {
		return m
	}
	if n.isDir {
		m := newDir()
		c.seen[n] = m
		for name, child := range c.entries(n) {
			m.children[name] = c.clone(child)
		}
		m.syncedChildren = maps.Clone(m.children)
		return m
	}
	data := n.syncedData
	if c.opts.TornTails && c.opts.Rand != nil && len(n.data) > len(data) && bytes.HasPrefix(n.data, data) {
		tail := n.data[len(data):]
		data = n.data[:len(data)+c.opts.Rand.IntN(len(tail)+1)]
	} else if c.opts.TornWrites && c.opts.Rand != nil && !bytes.HasPrefix(n.data, data) {
		unit := c.opts.TornWriteUnit
		if unit <= 0 {
			unit = 512
		}
		data = tornSectors(c.opts.Rand, data, n.data, unit)
	}
	data = data[:len(data):len(data)]
	// The size is durable as synced; unsynced writes into reserved
	// space may be lost (zeros) or kept.
	reserved := max(int64(len(n.syncedData))+n.syncedReserved-int64(len(data)), 0)
	m := &memNode{data: data, syncedData: data, reserved: reserved, syncedReserved: reserved}
	c.seen[n] = m
	return m
}

// tornSectors returns synced with each sector-byte unit replaced by
// cur's at random (cur's zeros where cur is shorter).
func tornSectors(rng *rand.Rand, synced, cur []byte, sector int) []byte {
	out := slices.Clone(synced)
	for off := 0; off < len(out); off += sector {
		if rng.IntN(2) == 0 {
			continue
		}
		end := min(off+sector, len(out))
		clear(out[off:end])
		if off < len(cur) {
			copy(out[off:end], cur[off:min(end, len(cur))])
		}
	}
	return out
}

// memFile is a handle on a MemFS file.
type memFile struct {
	// fs is the file system the file lives in; its mu guards the fields
	// below and the node. Immutable; never nil.
	fs *MemFS
	// node is the file. Immutable; never nil.
	node *memNode
	// name is the name it was opened by. Immutable.
	name string
	// writable is false for Open handles. Immutable.
	writable bool
	// appends is set for Create and OpenAppend handles, whose writes go
	// to the end. Immutable.
	appends bool
	// pos is the offset of the next Read.
	pos int64
	// closed is set by Close.
	closed bool
}

func (f *memFile) checkLocked(op string, write bool) error {
	if f.closed {
		return &os.PathError{Op: op, Path: f.name, Err: os.ErrClosed}
	}
	if write && !f.writable {
		return pathErr(op, f.name, syscall.EBADF)
	}
	return nil
}

// Read implements io.Reader from the handle's own offset, which starts at
// 0 and, as with O_APPEND on Linux, moves to the end after each Write.
func (f *memFile) Read(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("read", false); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if f.pos >= f.node.size() {
		return 0, io.EOF
	}
	n := f.node.readAt(p, f.pos)
	f.pos += int64(n)
	return n, nil
}

// ReadAt implements io.ReaderAt like *os.File: a read that reaches the end
// returns the bytes there are and io.EOF.
func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("read", false); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &os.PathError{Op: "readat", Path: f.name, Err: errors.New("negative offset")}
	}
	if off >= f.node.size() {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := f.node.readAt(p, off)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Write implements io.Writer: p goes to the end of the file.
func (f *memFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("write", true); err != nil {
		return 0, err
	}
	f.node.materialize(f.node.size())
	f.node.data = append(f.node.data, p...)
	f.pos = int64(len(f.node.data))
	return len(p), nil
}

// WriteAt implements io.WriterAt for handles from OpenWrite.
func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("write", true); err != nil {
		return 0, err
	}
	if f.appends {
		return 0, &os.PathError{Op: "writeat", Path: f.name, Err: errors.New("file opened for appending")}
	}
	if off < 0 {
		return 0, &os.PathError{Op: "writeat", Path: f.name, Err: errors.New("negative offset")}
	}
	n := f.node
	size := n.size()
	n.materialize(off)
	if grow := off - int64(len(n.data)); grow > 0 { // a hole past the end
		n.data = append(n.data, make([]byte, grow)...)
	}
	if off < int64(len(n.data)) {
		// Copy rather than write through: see memNode.syncedData.
		n.data = slices.Clone(n.data)
		c := copy(n.data[off:], p)
		n.data = append(n.data, p[c:]...)
	} else {
		n.data = append(n.data, p...)
	}
	n.reserved = max(size-int64(len(n.data)), 0)
	return len(p), nil
}

// Preallocate implements Preallocator.
func (f *memFile) Preallocate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("fallocate", true); err != nil {
		return err
	}
	if grow := size - f.node.size(); grow > 0 {
		f.node.reserved += grow
	}
	return nil
}

// Sync implements File: the current content becomes the durable one.
func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("sync", false); err != nil {
		return err
	}
	f.node.syncLocked()
	return nil
}

// Truncate implements File; growing pads with zeros.
func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("truncate", true); err != nil {
		return err
	}
	if size < 0 {
		return pathErr("truncate", f.name, syscall.EINVAL)
	}
	n := f.node
	if size <= int64(len(n.data)) {
		// Copy rather than reslice: see memNode.syncedData.
		n.data = slices.Clone(n.data[:size])
		n.reserved = 0
	} else {
		n.reserved = size - int64(len(n.data))
	}
	return nil
}

// Size implements File.
func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("stat", false); err != nil {
		return 0, err
	}
	return f.node.size(), nil
}

// Close implements io.Closer; closing twice fails with os.ErrClosed.
func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("close", false); err != nil {
		return err
	}
	f.closed = true
	return nil
}
