package metadata

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

const (
	logName      = "metadata.log"
	snapshotName = "snapshot.json"
	metaName     = "meta.properties"
	// snapshotEvery is the number of committed batches after which the
	// image is snapshotted and the log restarted.
	snapshotEvery = 1000
	// maxFrame bounds a frame's payload so a corrupt length cannot make
	// recovery allocate gigabytes.
	maxFrame = 64 << 20
)

// ErrClosed is returned by Update after Close.
var ErrClosed = errors.New("metadata: store closed")

// Store persists the metadata log and publishes the current Image.
//
// Update is serialized by mu; Image is lock-free.
type Store struct {
	fs  vfs.FS
	dir string
	log *slog.Logger

	img atomic.Pointer[Image]

	// mu serializes Update, snapshots and Close.
	mu sync.Mutex
	// f is the open log file; nil after Close. Guarded by mu.
	f vfs.File
	// batches counts frames in the log since the last snapshot.
	batches int
}

// Open recovers the store in dir (created if missing): it loads the
// snapshot, replays the log and truncates a torn tail.
func Open(fs vfs.FS, dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := fs.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	// Make the directory itself durable before anything in it matters.
	if err := fs.SyncDir(filepath.Dir(dir)); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	s := &Store{fs: fs, dir: dir, log: log}
	clusterID, err := s.loadClusterID()
	if err != nil {
		return nil, err
	}
	img := Empty()
	if data, err := vfs.ReadFile(fs, filepath.Join(dir, snapshotName)); err == nil {
		if img, err = decodeSnapshot(data); err != nil {
			return nil, fmt.Errorf("metadata: snapshot: %w", err)
		}
	} else if !vfs.IsNotExist(err) {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	img.ClusterID = clusterID

	f, err := fs.OpenAppend(filepath.Join(dir, logName))
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if err := fs.SyncDir(dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("metadata: %w", err)
	}
	img, good, n, err := replay(f, img)
	if err != nil {
		f.Close()
		return nil, err
	}
	if size, _ := f.Size(); size > good {
		log.Warn("metadata log has a torn tail; truncating", "size", size, "valid", good)
		if err := f.Truncate(good); err != nil {
			f.Close()
			return nil, fmt.Errorf("metadata: truncate: %w", err)
		}
	}
	// What replay applied must be durable before the broker acts on it:
	// after a process crash the log's unsynced tail is still in the page
	// cache (a producer ID block or a topic a later power loss would take
	// back, and hand out or create again).
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("metadata: %w", err)
	}
	s.f = f
	s.batches = n
	s.img.Store(img)
	return s, nil
}

func (s *Store) loadClusterID() (string, error) {
	name := filepath.Join(s.dir, metaName)
	data, err := vfs.ReadFile(s.fs, name)
	if err == nil {
		for _, line := range bytes.Split(data, []byte("\n")) {
			if k, v, ok := bytes.Cut(line, []byte("=")); ok && string(k) == "cluster.id" {
				return string(v), nil
			}
		}
		return "", fmt.Errorf("metadata: %s has no cluster.id", name)
	}
	if !vfs.IsNotExist(err) {
		return "", fmt.Errorf("metadata: %w", err)
	}
	id := NewUUID()
	// Kafka's cluster IDs are 22-char URL-safe base64 of a UUID; any
	// string works for clients, hex keeps it readable.
	clusterID := id.String()[:22]
	if err := vfs.WriteFileAtomic(s.fs, s.dir, name, []byte("version=1\ncluster.id="+clusterID+"\n")); err != nil {
		return "", fmt.Errorf("metadata: %w", err)
	}
	return clusterID, nil
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
		if length > maxFrame || pos+8+length > size {
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

type frame struct {
	Offset  int64    `json:"offset"`
	Records []Record `json:"records"`
}

// Image returns the current image. Never nil.
func (s *Store) Image() *Image { return s.img.Load() }

// Update computes records from the current image with fn and commits
// them: written to the log, synced, applied and published before Update
// returns the new image. fn runs under the store's lock, so it sees every
// earlier commit; an error from fn aborts without writing. An fn that
// returns no records commits nothing.
func (s *Store) Update(fn func(img *Image) ([]Record, error)) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil, ErrClosed
	}
	cur := s.img.Load()
	recs, err := fn(cur)
	if err != nil || len(recs) == 0 {
		return cur, err
	}
	offset := cur.Offset + 1
	next, err := Apply(cur, offset, recs)
	if err != nil {
		return nil, err
	}
	buf, err := encodeFrame(offset, recs)
	if err != nil {
		return nil, err
	}
	if _, err := s.f.Write(buf); err != nil {
		return nil, s.failLocked(err)
	}
	if err := s.f.Sync(); err != nil {
		return nil, s.failLocked(err)
	}
	next.ClusterID = cur.ClusterID
	s.img.Store(next)
	s.batches++
	if s.batches >= snapshotEvery {
		if err := s.snapshotLocked(next); err != nil {
			s.log.Error("metadata snapshot failed", "err", err)
		}
	}
	return next, nil
}

// encodeFrame encodes one log frame: u32 length, u32 CRC-32C, JSON.
func encodeFrame(offset int64, recs []Record) ([]byte, error) {
	payload, err := json.Marshal(frame{Offset: offset, Records: recs})
	if err != nil {
		return nil, fmt.Errorf("metadata: encode: %w", err)
	}
	buf := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint32(buf[0:], uint32(len(payload)))
	binary.BigEndian.PutUint32(buf[4:], batch.Checksum(payload))
	return append(buf, payload...), nil
}

// failLocked handles a failed log write: the tail may hold a partial
// frame, which recovery would truncate; we truncate it now by reopening.
func (s *Store) failLocked(err error) error {
	good, serr := s.validSizeLocked()
	if serr == nil {
		if terr := s.f.Truncate(good); terr != nil {
			s.log.Error("metadata: cannot truncate after failed write", "err", terr)
		}
	}
	return fmt.Errorf("metadata: write: %w", err)
}

func (s *Store) validSizeLocked() (int64, error) {
	return scanFrames(s.f, nil)
}

// snapshotLocked writes img as the snapshot and starts an empty log.
func (s *Store) snapshotLocked(img *Image) error {
	data, err := encodeSnapshot(img)
	if err != nil {
		return err
	}
	if err := vfs.WriteFileAtomic(s.fs, s.dir, filepath.Join(s.dir, snapshotName), data); err != nil {
		return err
	}
	// The snapshot covers every frame; a crash before the log is reset
	// replays frames at or below img.Offset, which replay skips.
	f, err := s.fs.Create(filepath.Join(s.dir, logName))
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	s.f.Close()
	s.f = f
	s.batches = 0
	return s.fs.SyncDir(s.dir)
}

// Close closes the log. Idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

type snapshot struct {
	Offset         int64                        `json:"offset"`
	Topics         []snapshotTopic              `json:"topics"`
	BrokerConfigs  map[string]map[string]string `json:"brokerConfigs"`
	NextProducerID int64                        `json:"nextProducerId"`
	Brokers        []*BrokerRecord              `json:"brokers"`
	Scram          []*ScramRecord               `json:"scram,omitempty"`
	Acls           []*AclRecord                 `json:"acls,omitempty"`
	Quotas         []*ClientQuota               `json:"quotas,omitempty"`
}

type snapshotTopic struct {
	Name       string            `json:"name"`
	ID         UUID              `json:"id"`
	Partitions []*Partition      `json:"partitions"`
	Configs    map[string]string `json:"configs"`
}

func encodeSnapshot(img *Image) ([]byte, error) {
	snap := snapshot{
		Offset:         img.Offset,
		BrokerConfigs:  img.BrokerConfigs,
		NextProducerID: img.NextProducerID,
	}
	for _, name := range img.TopicNames() {
		t := img.Topics[name]
		snap.Topics = append(snap.Topics, snapshotTopic{Name: t.Name, ID: t.ID, Partitions: t.Partitions, Configs: t.Configs})
	}
	for _, b := range img.Brokers {
		snap.Brokers = append(snap.Brokers, b)
	}
	for _, user := range slices.Sorted(maps.Keys(img.Scram)) {
		for _, mech := range slices.Sorted(maps.Keys(img.Scram[user])) {
			snap.Scram = append(snap.Scram, img.Scram[user][mech])
		}
	}
	for _, id := range slices.SortedFunc(maps.Keys(img.Acls), func(a, b UUID) int { return bytes.Compare(a[:], b[:]) }) {
		snap.Acls = append(snap.Acls, img.Acls[id])
	}
	for _, k := range slices.Sorted(maps.Keys(img.Quotas)) {
		snap.Quotas = append(snap.Quotas, img.Quotas[k])
	}
	data, err := json.Marshal(snap)
	if err != nil {
		return nil, err
	}
	// A checksum line first, so a torn snapshot is detected (the rename
	// makes it unlikely, but disks lie).
	return append(fmt.Appendf(nil, "%08x\n", batch.Checksum(data)), data...), nil
}

func decodeSnapshot(data []byte) (*Image, error) {
	sum, body, ok := bytes.Cut(data, []byte("\n"))
	if !ok || string(sum) != fmt.Sprintf("%08x", batch.Checksum(body)) {
		return nil, errors.New("checksum mismatch")
	}
	var snap snapshot
	if err := json.Unmarshal(body, &snap); err != nil {
		return nil, err
	}
	img := Empty()
	img.Offset = snap.Offset
	img.NextProducerID = snap.NextProducerID
	if snap.BrokerConfigs != nil {
		img.BrokerConfigs = snap.BrokerConfigs
	}
	for _, st := range snap.Topics {
		t := &Topic{Name: st.Name, ID: st.ID, Partitions: st.Partitions, Configs: st.Configs}
		if t.Configs == nil {
			t.Configs = map[string]string{}
		}
		img.Topics[t.Name] = t
		img.TopicIDs[t.ID] = t
	}
	for _, b := range snap.Brokers {
		img.Brokers[b.ID] = b
	}
	for _, c := range snap.Scram {
		if img.Scram[c.User] == nil {
			img.Scram[c.User] = map[string]*ScramRecord{}
		}
		img.Scram[c.User][c.Mechanism] = c
	}
	for _, a := range snap.Acls {
		img.Acls[a.ID] = a
	}
	img.AclsChanged = img.Offset
	for _, q := range snap.Quotas {
		img.Quotas[QuotaKey(q.Entity)] = q
	}
	return img, nil
}
