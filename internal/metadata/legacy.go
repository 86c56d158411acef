package metadata

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// The store before the metadata log was replicated (stop 34) kept a log
// of its own in the store's directory; a data directory written then is
// imported once into the replicated log (Store.importLegacy).
//
// Its files:
//
//	meta.properties  version=1, cluster.id=<id>
//	snapshot.json    the image at an offset (encodeSnapshot)
//	metadata.log     one frame per committed batch after the snapshot:
//	                 length uint32, CRC-32C uint32, JSON {"offset", "records"}
const (
	legacyLogName      = "metadata.log"
	legacySnapshotName = "snapshot.json"
	legacyMetaName     = "meta.properties"
	// legacyMaxFrame bounds a frame's payload so a corrupt length cannot
	// make recovery allocate gigabytes.
	legacyMaxFrame = 64 << 20
	// legacySuffix is appended to the legacy files' names once they are
	// imported.
	legacySuffix = ".imported"
)

// legacyFiles are the files a legacy store may hold.
var legacyFiles = []string{legacyMetaName, legacySnapshotName, legacyLogName}

// hasLegacy reports whether dir holds any file of a legacy store.
func hasLegacy(fs vfs.FS, dir string) (bool, error) {
	for _, name := range legacyFiles {
		_, err := fs.Stat(filepath.Join(dir, name))
		if err == nil {
			return true, nil
		}
		if !vfs.IsNotExist(err) {
			return false, fmt.Errorf("metadata: %w", err)
		}
	}
	return false, nil
}

// loadLegacy reads the image a legacy store in dir held: its snapshot
// plus every valid frame of its log (a torn tail ends the log, as the
// legacy store's own recovery did).
func loadLegacy(fs vfs.FS, dir string) (*Image, error) {
	img := Empty()
	if data, err := vfs.ReadFile(fs, filepath.Join(dir, legacySnapshotName)); err == nil {
		if img, err = decodeSnapshot(data); err != nil {
			return nil, fmt.Errorf("metadata: legacy snapshot: %w", err)
		}
	} else if !vfs.IsNotExist(err) {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if data, err := vfs.ReadFile(fs, filepath.Join(dir, legacyMetaName)); err == nil {
		for _, line := range bytes.Split(data, []byte("\n")) {
			if k, v, ok := bytes.Cut(line, []byte("=")); ok && string(k) == "cluster.id" {
				img.ClusterID = string(v)
			}
		}
	} else if !vfs.IsNotExist(err) {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	f, err := fs.Open(filepath.Join(dir, legacyLogName))
	if vfs.IsNotExist(err) {
		return img, nil
	}
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	defer f.Close()
	img, _, _, err = replay(f, img)
	return img, err
}

// retireLegacy renames the legacy files once their image is in the
// replicated log, so they are neither imported again nor lost.
func retireLegacy(fs vfs.FS, dir string) error {
	for _, name := range legacyFiles {
		old := filepath.Join(dir, name)
		err := fs.Rename(old, old+legacySuffix)
		if err != nil && !vfs.IsNotExist(err) {
			return fmt.Errorf("metadata: %w", err)
		}
	}
	return fs.SyncDir(dir)
}

// replay applies every valid frame of f to img. It returns the new
// image, the size of the valid prefix and the number of frames.
func replay(f vfs.File, img *Image) (*Image, int64, int, error) {
	n := 0
	good, err := scanFrames(f, func(fr *frame) error {
		if fr.Offset <= img.Offset {
			// Already in the snapshot (crash between snapshot and
			// log reset).
			return nil
		}
		next, err := Apply(img, fr.Offset, fr.Records)
		if err != nil {
			return fmt.Errorf("metadata: replay at offset %d: %w", fr.Offset, err)
		}
		img = next
		n++
		return nil
	})
	return img, good, n, err
}

// scanFrames calls fn for every valid frame of f in order and returns the
// size of the valid prefix. It stops at the first torn or corrupt frame.
func scanFrames(f vfs.File, fn func(*frame) error) (int64, error) {
	size, err := f.Size()
	if err != nil {
		return 0, fmt.Errorf("metadata: %w", err)
	}
	var pos int64
	var hdr [8]byte
	for pos+8 <= size {
		if _, err := f.ReadAt(hdr[:], pos); err != nil {
			break
		}
		length := int64(binary.BigEndian.Uint32(hdr[0:]))
		crc := binary.BigEndian.Uint32(hdr[4:])
		if length > legacyMaxFrame || pos+8+length > size {
			break
		}
		payload := make([]byte, length)
		if _, err := f.ReadAt(payload, pos+8); err != nil && !errors.Is(err, io.EOF) {
			break
		}
		if batch.Checksum(payload) != crc {
			break
		}
		var fr frame
		if err := json.Unmarshal(payload, &fr); err != nil {
			break
		}
		if fn != nil {
			if err := fn(&fr); err != nil {
				return pos, err
			}
		}
		pos += 8 + length
	}
	return pos, nil
}

// frame is one legacy log frame's payload.
type frame struct {
	Offset  int64    `json:"offset"`
	Records []Record `json:"records"`
}
