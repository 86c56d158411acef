package vfs

import (
	"os"
	"slices"
)

// Default is the operating system's file system.
var Default FS = osFS{}

type osFS struct{}

// OSFile is a File backed by an *os.File. Callers that can use the file
// descriptor directly (sendfile) type-assert to it.
type OSFile struct{ *os.File }

// Size implements File.
func (f OSFile) Size() (int64, error) {
	fi, err := f.File.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// zeros is what Preallocate writes.
var zeros [256 << 10]byte

// Preallocate implements Preallocator by writing zeros from the file's
// end to size, not with fallocate(2): ext4 and XFS mark fallocated
// extents unwritten, and the first write into each block converts it
// with another journal commit, which is the cost preallocating avoids.
// The handle must be one WriteAt accepts (OpenWrite).
func (f OSFile) Preallocate(size int64) error {
	fi, err := f.File.Stat()
	if err != nil {
		return err
	}
	for off := fi.Size(); off < size; {
		n, err := f.File.WriteAt(zeros[:min(size-off, int64(len(zeros)))], off)
		if err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}

func (osFS) Create(name string) (File, error) {
	f, err := openFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return OSFile{f}, nil
}

func (osFS) OpenAppend(name string) (File, error) {
	f, err := openFile(name, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return OSFile{f}, nil
}

func (osFS) OpenWrite(name string) (File, error) {
	f, err := openFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return OSFile{f}, nil
}

func (osFS) Open(name string) (File, error) {
	f, err := openFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	return OSFile{f}, nil
}

func (osFS) Remove(name string) error             { return os.Remove(name) }
func (osFS) RemoveAll(name string) error          { return os.RemoveAll(name) }
func (osFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }
func (osFS) MkdirAll(dir string) error            { return os.MkdirAll(dir, 0o755) }

func (osFS) List(dir string) ([]string, error) {
	d, err := openFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	ents, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	slices.Sort(names)
	return names, nil
}

func (osFS) Stat(name string) (FileInfo, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return FileInfo{}, err
	}
	return FileInfo{Size: fi.Size(), IsDir: fi.IsDir()}, nil
}

func (osFS) SyncDir(dir string) error {
	d, err := openFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
