//go:build !linux

package vfs

import "errors"

// DropCache implements CacheAdvisor; elsewhere than Linux it does nothing.
func (f OSFile) DropCache(off, n int64) error { return nil }

// Prefetch implements CacheAdvisor; elsewhere than Linux it does nothing.
func (f OSFile) Prefetch(off, n int64) error { return nil }

// WriteBack implements WriteBacker; elsewhere than Linux it does nothing.
func (f OSFile) WriteBack(off, n int64) error { return nil }

// StartWriteBack implements WriteBehinder; elsewhere than Linux it does
// nothing.
func (f OSFile) StartWriteBack(off, n int64) error { return nil }

// Allocate implements Allocator; elsewhere than Linux it is unsupported.
func (f OSFile) Allocate(off, n int64) error { return errors.ErrUnsupported }
