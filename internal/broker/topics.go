package broker

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/partlog"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

// Internal topic names.
const (
	OffsetsTopic = "__consumer_offsets"
	TxnTopic     = "__transaction_state"
)

func isInternal(topic string) bool { return topic == OffsetsTopic || topic == TxnTopic }

// ClusterMetadataTopic names the broker's metadata log, kept in the data
// directory as ClusterMetadataTopic-0 as Kafka keeps its KRaft log. No
// topic may take the name: its partition 0 would share that directory,
// and deleting the topic would remove every topic's definition with it.
// Kafka refuses creating it with INVALID_REQUEST.
const ClusterMetadataTopic = "__cluster_metadata"

const maxTopicNameLen = 249

// validateTopicName checks a topic name as Kafka's Topic.validate does.
func validateTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("topic name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed", name)
	case len(name) > maxTopicNameLen:
		return fmt.Errorf("topic name is longer than %d characters", maxTopicNameLen)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %q contains characters other than ASCII alphanumerics, '.', '_' and '-'", name)
		}
	}
	return nil
}

// collides reports whether name collides with an existing topic once '.'
// and '_' are treated alike (they share metric names in Kafka, which
// rejects such pairs).
func collides(img *metadata.Image, name string) (string, bool) {
	norm := func(s string) string { return strings.ReplaceAll(s, ".", "_") }
	n := norm(name)
	for existing := range img.Topics {
		if existing != name && norm(existing) == n {
			return existing, true
		}
	}
	return "", false
}

// topicSpec is a topic to create.
type topicSpec struct {
	name              string
	partitions        int32
	replicationFactor int16
	// assignment, when set, gives each partition's replicas, as the
	// request did (checkTopicSpec validates it).
	assignment []kmsg.CreateTopicsRequestTopicReplicaAssignment
	configs    map[string]string
}

// topicError is a per-topic failure with its Kafka error.
type topicError struct {
	err *kerr.Error
	msg string
}

func (e *topicError) Error() string { return e.msg }

func newTopicError(err *kerr.Error, format string, args ...any) *topicError {
	return &topicError{err: err, msg: fmt.Sprintf(format, args...)}
}

// checkTopicSpec validates spec against img and fills defaults.
func (b *Broker) checkTopicSpec(img *metadata.Image, spec *topicSpec) *topicError {
	if spec.name == ClusterMetadataTopic {
		return newTopicError(kerr.InvalidRequest, "creation of internal topic %s is prohibited", ClusterMetadataTopic)
	}
	if err := validateTopicName(spec.name); err != nil {
		return newTopicError(kerr.InvalidTopicException, "%v", err)
	}
	if _, ok := img.Topics[spec.name]; ok {
		return newTopicError(kerr.TopicAlreadyExists, "topic %q already exists", spec.name)
	}
	if other, ok := collides(img, spec.name); ok {
		return newTopicError(kerr.InvalidTopicException, "topic %q collides with existing topic %q", spec.name, other)
	}
	cfg := b.Config()
	if len(spec.assignment) > 0 {
		if spec.partitions != -1 || spec.replicationFactor != -1 {
			return newTopicError(kerr.InvalidRequest, "both partition assignment and partition count or replication factor given")
		}
		spec.partitions = int32(len(spec.assignment))
		spec.replicationFactor = int16(len(spec.assignment[0].Replicas))
		// Each partition 0..n-1 exactly once, as Kafka requires; an
		// index outside that range is refused before anything is sized
		// by it.
		given := make([]bool, len(spec.assignment))
		known := b.placementBrokers(img)
		for _, a := range spec.assignment {
			i, rs := a.Partition, a.Replicas
			if i < 0 || int(i) >= len(given) {
				return newTopicError(kerr.InvalidReplicaAssignment, "partitions should be a consecutive 0-based integer sequence")
			}
			if given[i] {
				return newTopicError(kerr.InvalidReplicaAssignment, "found multiple manual partition assignments for partition %d", i)
			}
			given[i] = true
			if len(rs) == 0 || len(rs) != int(spec.replicationFactor) {
				return newTopicError(kerr.InvalidReplicaAssignment, "partition %d has %d replicas, want %d", i, len(rs), spec.replicationFactor)
			}
			seen := map[int32]bool{}
			for _, r := range rs {
				if !slices.Contains(known, r) {
					return newTopicError(kerr.InvalidReplicaAssignment, "unknown broker %d in assignment", r)
				}
				if seen[r] {
					return newTopicError(kerr.InvalidReplicaAssignment, "duplicate broker %d in assignment", r)
				}
				seen[r] = true
			}
		}
	}
	if spec.partitions == -1 {
		spec.partitions = int32(cfg.Int("num.partitions"))
	}
	if spec.replicationFactor == -1 {
		spec.replicationFactor = int16(cfg.Int("default.replication.factor"))
	}
	if spec.partitions <= 0 {
		return newTopicError(kerr.InvalidPartitions, "number of partitions must be larger than 0")
	}
	if spec.partitions > maxPartitionsPerTopic {
		return newTopicError(kerr.InvalidPartitions, "number of partitions %d is above the limit of %d", spec.partitions, maxPartitionsPerTopic)
	}
	if spec.replicationFactor <= 0 {
		return newTopicError(kerr.InvalidReplicationFactor, "replication factor must be larger than 0")
	}
	if brokers := len(b.placementBrokers(img)); int(spec.replicationFactor) > brokers {
		return newTopicError(kerr.InvalidReplicationFactor, "replication factor: %d larger than available brokers: %d", spec.replicationFactor, brokers)
	}
	if err := config.ValidateTopicOverrides(spec.configs); err != nil {
		return newTopicError(kerr.InvalidConfig, "%v", err)
	}
	return nil
}

// maxPartitionsPerTopic bounds one request's damage; Kafka has no fixed
// limit but a single broker serving millions of partitions is a mistake.
const maxPartitionsPerTopic = 100000

// topicRecords returns the metadata records that create spec.
func (b *Broker) topicRecords(img *metadata.Image, spec *topicSpec) []metadata.Record {
	id := metadata.NewUUID()
	recs := []metadata.Record{{Topic: &metadata.TopicRecord{Name: spec.name, ID: id}}}
	var assignment func(int) []int32
	if len(spec.assignment) > 0 {
		byIndex := make([][]int32, len(spec.assignment))
		for _, a := range spec.assignment {
			byIndex[a.Partition] = a.Replicas
		}
		assignment = func(i int) []int32 { return byIndex[i] }
	}
	recs = append(recs, b.partitionRecordsFor(img, id, 0, spec.partitions, int(spec.replicationFactor), assignment)...)
	for k, v := range spec.configs {
		recs = append(recs, metadata.Record{Config: &metadata.ConfigRecord{
			ResourceType: metadata.ResourceTopic, ResourceName: spec.name, Name: k, Value: &v,
		}})
	}
	return recs
}

// createTopics creates topics in one metadata commit. It returns one
// error per spec (nil = created) and the resulting image.
func (b *Broker) createTopics(specs []*topicSpec, validateOnly bool) ([]*topicError, *metadata.Image, error) {
	errs := make([]*topicError, len(specs))
	img, err := b.meta.Update(func(img *metadata.Image) ([]metadata.Record, error) {
		var recs []metadata.Record
		// A name given more than once is refused in every entry, the
		// first included: Kafka's controller drops all of them, so a
		// client never gets a topic whose settings it cannot tell.
		count := map[string]int{}
		for _, spec := range specs {
			count[spec.name]++
		}
		have := img.PartitionCount()
		for i, spec := range specs {
			if count[spec.name] > 1 {
				errs[i] = newTopicError(kerr.InvalidRequest, "topic %q appears more than once", spec.name)
				continue
			}
			if errs[i] = b.checkTopicSpec(img, spec); errs[i] != nil {
				continue
			}
			if errs[i] = b.checkCapacity(have, int(spec.partitions)); errs[i] != nil || validateOnly {
				continue
			}
			have += int(spec.partitions)
			recs = append(recs, b.topicRecords(img, spec)...)
		}
		return recs, nil
	})
	if err != nil {
		return nil, nil, err
	}
	if err := b.reconcile(img); err != nil {
		return nil, nil, err
	}
	for i, spec := range specs {
		if errs[i] == nil && !validateOnly {
			b.log.Info("topic created", "topic", spec.name, "partitions", spec.partitions)
		}
	}
	return errs, img, nil
}

// autoCreateTopic creates a topic with default settings, as Kafka does
// for Metadata requests when auto.create.topics.enable is set. It
// returns the topic or the reason it could not be created.
func (b *Broker) autoCreateTopic(name string) (*metadata.Topic, *topicError) {
	spec := &topicSpec{name: name, partitions: -1, replicationFactor: -1}
	errs, img, err := b.createTopics([]*topicSpec{spec}, false)
	if err != nil {
		return nil, newTopicError(kerr.UnknownServerError, "%v", err)
	}
	if errs[0] != nil && errs[0].err != kerr.TopicAlreadyExists {
		return nil, errs[0]
	}
	t, ok := b.meta.Image().Topic(name)
	if !ok {
		_ = img
		return nil, newTopicError(kerr.UnknownTopicOrPartition, "topic %q vanished", name)
	}
	return t, nil
}

// partitionDir is the directory of a partition's log, named as Kafka's.
func (b *Broker) partitionDir(topic string, p int32) string {
	return filepath.Join(b.dir, topic+"-"+strconv.Itoa(int(p)))
}

const topicIDFile = "partition.metadata"

// journalDir is the data directory's partlog journal: a topic's partition
// directories are named <topic>-<n>, so it never clashes with one.
const journalDir = "journal"

// reconcile makes the open partitions match img: it opens logs of new
// partitions, closes and removes logs of deleted topics, and applies
// config changes. It runs at start and after each metadata change.
func (b *Broker) reconcile(img *metadata.Image) error {
	b.reconcileMu.Lock()
	defer b.reconcileMu.Unlock()

	defer func() { b.reconciled = img }()
	b.cfg.Store(b.effectiveConfig(img))
	cfg := b.Config()
	b.syncer.KeepCached(cfg.Int("log.cache.keep.bytes"))
	b.syncer.CacheBudget(cfg.Int("log.cache.budget.bytes"))
	if b.metadataInPlace {
		b.syncer.AllocateAhead(cfg.Int("log.allocate.ahead.bytes"))
	}

	// Deleted topics.
	b.partsMu.RLock()
	var gone []metadata.UUID
	for id := range b.parts {
		if _, ok := img.TopicIDs[id]; !ok {
			gone = append(gone, id)
		}
	}
	b.partsMu.RUnlock()
	var goneNames []string
	for _, id := range gone {
		b.partsMu.Lock()
		ps := b.parts[id]
		delete(b.parts, id)
		b.partsMu.Unlock()
		if t, ok := b.reconciled.TopicIDs[id]; ok {
			goneNames = append(goneNames, t.Name)
		}
		for _, p := range ps {
			if p != nil { // nil: another broker's
				b.deletePartition(p, kerr.UnknownTopicOrPartition)
			}
		}
	}
	b.groupsTopicsDeleted(goneNames)

	// New partitions and config changes.
	for _, t := range img.Topics {
		tcfg := cfg.Topic(t.Configs)
		settings := newProduceSettings(tcfg)
		b.partsMu.RLock()
		have := b.parts[t.ID]
		b.partsMu.RUnlock()
		for i, p := range have {
			if i >= len(t.Partitions) {
				break
			}
			switch mp := t.Partitions[i]; {
			case p == nil && b.hosts(mp):
				// Reassigned here (KIP-455): a new replica, which
				// fetches the log from the leader.
				if err := b.addReplica(t, mp, tcfg, settings, img.Offset); err != nil {
					return err
				}
			case p == nil:
			case !b.hosts(mp):
				// Reassigned away: no longer a replica.
				b.removeReplica(t, p)
			default:
				p.setConfig(tcfg, settings)
				p.log.SetConfig(partlogConfig(tcfg))
				b.applyPartitionState(p, mp, img.Offset)
			}
		}
		if len(have) >= len(t.Partitions) {
			continue
		}
		ps, err := b.openPartitions(t, t.Partitions[len(have):], tcfg, settings)
		for i, p := range ps {
			if p != nil {
				b.applyPartitionState(p, t.Partitions[len(have)+i], img.Offset)
			}
		}
		b.partsMu.Lock()
		b.parts[t.ID] = append(b.parts[t.ID], ps...)
		b.partsMu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// deletePartition closes p and deletes its log: its topic was deleted,
// or this broker is no longer one of its replicas. Its waiters get err;
// fetches parked on it wake and find it gone.
func (b *Broker) deletePartition(p *partition, err *kerr.Error) {
	b.fetchers.unfollow(p)
	p.mu.Lock()
	p.deleted = true
	p.leading.Store(false)
	p.notifyLocked()
	p.notifyAppendLocked()
	lost := p.rep.hwWaiters
	p.rep.hwWaiters = nil
	p.mu.Unlock()
	fireAll(lost, err)
	if err := p.log.Delete(); err != nil {
		b.log.Error("deleting partition log", "topic", p.topic, "partition", p.index, "err", err)
	}
}

// setPartition replaces partition index of topic id (reassignment). The
// slice is copied: readers may hold the old one outside partsMu.
func (b *Broker) setPartition(id metadata.UUID, index int32, p *partition) {
	b.partsMu.Lock()
	defer b.partsMu.Unlock()
	ps := slices.Clone(b.parts[id])
	if int(index) < len(ps) {
		ps[index] = p
		b.parts[id] = ps
	}
}

// addReplica opens the log of partition mp of t, which a reassignment
// made this broker a replica of, and starts following its leader.
func (b *Broker) addReplica(t *metadata.Topic, mp *metadata.Partition, tcfg *config.TopicConfig, settings *produceSettings, offset int64) error {
	ps, err := b.openPartitions(t, []*metadata.Partition{mp}, tcfg, settings)
	if err != nil {
		return err
	}
	p := ps[0]
	b.log.Info("partition reassigned here", "topic", t.Name, "partition", mp.Partition, "replicas", mp.Replicas)
	b.applyPartitionState(p, mp, offset)
	b.setPartition(t.ID, mp.Partition, p)
	return nil
}

// removeReplica stops hosting p, whose reassignment took this broker off
// its replicas: its coordinator (an internal topic's) resigns, and its
// log is deleted.
func (b *Broker) removeReplica(t *metadata.Topic, p *partition) {
	b.log.Info("partition reassigned away", "topic", t.Name, "partition", p.index)
	b.setPartition(t.ID, p.index, nil)
	if b.cluster && isInternal(p.topic) {
		p.mu.Lock()
		epoch := p.leaderEpoch
		p.mu.Unlock()
		b.coordinatorRole(p.topic, p.index, false, epoch)
	}
	b.deletePartition(p, kerr.NotLeaderForPartition)
}

// removeStrayLogs removes the partition logs in the data directory that
// img gives this broker no replica of: a partition reassigned away, or
// a topic deleted, while the broker was down (Kafka's stray logs,
// KIP-858), or a deletion a crash interrupted. A log is known by the
// topic ID in its partition.metadata; a directory without one, or
// naming a topic img has under another name, is left alone. Called at
// Open, after reconcile: img is at least as new as any image the logs
// were opened under, so a log it does not host is not needed here
// (added back later, this broker fetches it anew).
func (b *Broker) removeStrayLogs(img *metadata.Image) {
	names, err := b.fs.List(b.dir)
	if err != nil {
		b.log.Warn("listing the data directory for stray logs", "err", err)
		return
	}
	byID := make(map[string]*metadata.Topic, len(img.TopicIDs))
	for id, t := range img.TopicIDs {
		byID[id.String()] = t
	}
	for _, name := range names {
		dash := strings.LastIndexByte(name, '-')
		if dash <= 0 || name == ClusterMetadataTopic+"-0" {
			continue
		}
		index, err := strconv.ParseInt(name[dash+1:], 10, 32)
		if err != nil || index < 0 {
			continue
		}
		id, err := b.logTopicID(filepath.Join(b.dir, name))
		if err != nil || len(id) != 32 {
			continue
		}
		why := "its topic was deleted"
		if t, exists := byID[id]; exists {
			if t.Name != name[:dash] {
				continue
			}
			mp := t.Partition(int32(index))
			if mp != nil && b.hosts(mp) {
				continue
			}
			why = "this broker is not one of its replicas"
		}
		b.log.Info("removing stray partition log", "dir", name, "reason", why)
		if err := b.fs.RemoveAll(filepath.Join(b.dir, name)); err != nil {
			b.log.Warn("removing stray partition log", "dir", name, "err", err)
		}
	}
}

// logTopicID returns the topic ID in the partition.metadata of the log
// in dir ("" when the file names none), or the error reading it.
func (b *Broker) logTopicID(dir string) (string, error) {
	data, err := vfs.ReadFile(b.fs, filepath.Join(dir, topicIDFile))
	if err != nil {
		return "", err
	}
	id := ""
	for _, line := range strings.Split(string(data), "\n") {
		if v, found := strings.CutPrefix(line, "topic_id="); found {
			id = v
		}
	}
	return id, nil
}

// At start, RecoverWorkers partitions are opened at once: recovering a
// partition whose files are not in the page cache is a string of small
// reads, each waiting on the disk (docs/PERFORMANCE.md, "Restart").
// Partitions created later are opened one at a time: creating files in
// parallel contends in the kernel and cost several times the CPU.
// gregor serve runs recovery with GOMAXPROCS at least this, so that
// workers blocked in reads do not hold up the others.
const RecoverWorkers = 16

// openPartitions opens the partitions mps of t and returns them in
// order. On an error it returns the partitions opened before the one
// that failed and that error.
//
// Creating a partition is a directory and a few files; with an fsync of
// each new file and directory it took 11-12 s for 10,000 partitions
// here. When the Syncer can sync the whole file system, the new files
// and directories are left unsynced and made durable by one sync at the
// end, before any partition is published (and appended to). Partitions
// on disk are opened RecoverWorkers at a time while the broker starts;
// new ones one at a time (see RecoverWorkers).
func (b *Broker) openPartitions(t *metadata.Topic, mps []*metadata.Partition, tcfg *config.TopicConfig, settings *produceSettings) ([]*partition, error) {
	deferSync := len(mps) > 1 && b.syncer.CanSyncAll()
	opened := make([]*partition, len(mps))
	errs := make([]error, len(mps))
	var next atomic.Int64
	var failed atomic.Bool // no new partition is started after a failure
	var wg sync.WaitGroup
	workers := 1
	if b.recovering {
		workers = RecoverWorkers
	}
	for range min(len(mps), workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(mps) {
					return
				}
				if !b.hosts(mps[i]) {
					continue // stays nil: another broker's
				}
				if opened[i], errs[i] = b.openPartition(t, mps[i], tcfg, settings, deferSync); errs[i] != nil {
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	// Indices are taken in order, so those opened before the first
	// failure are a prefix; any opened after it are closed.
	var err error
	ps := opened
	for i := range opened {
		if errs[i] != nil || (opened[i] == nil && b.hosts(mps[i])) {
			err, ps = errs[i], opened[:i]
			for _, q := range opened[i+1:] {
				if q != nil {
					q.log.Close()
				}
			}
			break
		}
	}
	if deferSync && len(ps) > 0 {
		if serr := b.syncer.SyncAll(); serr != nil {
			for _, p := range ps {
				if p != nil {
					p.log.Close()
				}
			}
			return nil, fmt.Errorf("broker: syncing new partitions of %s: %w", t.Name, serr)
		}
	}
	return ps, err
}

// openPartition opens (recovering) one partition's log. A directory left
// by an earlier topic of the same name (deleted while the broker was
// down) is removed first.
func (b *Broker) openPartition(t *metadata.Topic, mp *metadata.Partition, tcfg *config.TopicConfig, settings *produceSettings, deferSync bool) (*partition, error) {
	dir := b.partitionDir(t.Name, mp.Partition)
	idFile := filepath.Join(dir, topicIDFile)
	if id, err := b.logTopicID(dir); err == nil {
		if id != t.ID.String() {
			b.log.Warn("removing log of an earlier topic with the same name", "dir", dir)
			if err := b.fs.RemoveAll(dir); err != nil {
				return nil, fmt.Errorf("broker: %w", err)
			}
		}
	} else if !vfs.IsNotExist(err) {
		return nil, fmt.Errorf("broker: %w", err)
	}
	l, err := partlog.Open(partlog.Options{
		FS:     b.fs,
		Dir:    dir,
		Config: partlogConfig(tcfg),
		Now:    b.now,
		Syncer: b.syncer,
		Logger: b.log.With("topic", t.Name, "partition", mp.Partition),
		OnRoll: b.kickRetention,
		// The topic ID tells this topic's entries from those of an
		// earlier topic of the same name.
		JournalKey: filepath.Base(dir) + "@" + t.ID.String(),
		DeferSync:  deferSync,
	})
	if err != nil {
		return nil, fmt.Errorf("broker: open %s-%d: %w", t.Name, mp.Partition, err)
	}
	if _, err := b.fs.Stat(idFile); vfs.IsNotExist(err) {
		data := []byte("version=0\ntopic_id=" + t.ID.String() + "\n")
		if deferSync {
			err = vfs.WriteFileRenamed(b.fs, idFile, data)
		} else {
			err = vfs.WriteFileAtomic(b.fs, dir, idFile, data)
		}
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("broker: %w", err)
		}
	}
	aborted, _, err := partlog.OpenTxnIndex(b.fs, dir)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("broker: %s-%d: %w", t.Name, mp.Partition, err)
	}
	p := &partition{
		topic:       t.Name,
		topicID:     t.ID,
		index:       mp.Partition,
		log:         l,
		leaderEpoch: mp.LeaderEpoch,
		aborted:     aborted,
	}
	p.onIndexError = func(err error) {
		b.log.Error("aborted transaction index", "topic", p.topic, "partition", p.index, "err", err)
	}
	p.setConfig(tcfg, settings)
	p.initReplicaState(b.nodeID, b.recovering)
	if !b.cluster || len(mp.ISR) <= 1 {
		// With one replica, everything recovered from disk is
		// durable: the high watermark is the log end offset. With
		// more, it is the checkpointed one until the followers
		// report (replica.go).
		p.log.SetHighWatermark(l.LogEndOffset())
	}
	if err := b.loadProducers(p); err != nil {
		l.Close()
		return nil, err
	}
	return p, nil
}
