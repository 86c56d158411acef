//go:build !linux

package vfs

import "os"

// Sync implements File with fsync (F_FULLFSYNC on macOS, as os.File
// does): elsewhere than Linux there is no fdatasync to call.
func (f OSFile) Sync() error {
	if err := f.File.Sync(); err != nil {
		return &os.PathError{Op: "fsync", Path: f.Name(), Err: err}
	}
	return nil
}

// OpenWholeSyncer implements wholeSyncOpener; elsewhere than Linux there
// is no syncfs, so logs are synced one by one.
func (osFS) OpenWholeSyncer(string) (WholeSyncer, error) { return nil, ErrNoWholeSync }

// MetadataInPlace reports false elsewhere than Linux.
func MetadataInPlace(FS, string) bool { return false }

// OnlineDiscard reports false elsewhere than Linux.
func OnlineDiscard(FS, string) bool { return false }
