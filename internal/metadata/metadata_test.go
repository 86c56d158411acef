package metadata

import (
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/vfs"
)

func createTopic(name string, parts int32) []Record {
	id := NewUUID()
	recs := []Record{{Topic: &TopicRecord{Name: name, ID: id}}}
	for i := range parts {
		recs = append(recs, Record{Partition: &PartitionRecord{TopicID: id, Partition: i, Replicas: []int32{0}, ISR: []int32{0}}})
	}
	return recs
}

func TestApplyDoesNotMutate(t *testing.T) {
	img := Empty()
	next, err := Apply(img, 0, createTopic("a", 3))
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Topics) != 0 || len(next.Topics) != 1 || len(next.Topics["a"].Partitions) != 3 {
		t.Fatalf("img %d topics, next %d", len(img.Topics), len(next.Topics))
	}
	v := "1000"
	next2, err := Apply(next, 1, []Record{{Config: &ConfigRecord{ResourceType: ResourceTopic, ResourceName: "a", Name: "retention.ms", Value: &v}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Topics["a"].Configs) != 0 || next2.Topics["a"].Configs["retention.ms"] != "1000" {
		t.Fatal("config apply mutated the old image")
	}
	leader := int32(5)
	next3, err := Apply(next2, 2, []Record{{PartitionChange: &PartitionChangeRecord{TopicID: next.Topics["a"].ID, Partition: 1, Leader: &leader}}})
	if err != nil {
		t.Fatal(err)
	}
	if p := next3.Topics["a"].Partitions[1]; p.Leader != 5 || p.LeaderEpoch != 1 {
		t.Fatalf("partition change: %+v", p)
	}
	if p := next2.Topics["a"].Partitions[1]; p.Leader != 0 || p.LeaderEpoch != 0 {
		t.Fatal("partition change mutated the old image")
	}
	if next3.TopicIDs[next.Topics["a"].ID] != next3.Topics["a"] {
		t.Fatal("name and ID maps disagree")
	}
}

// One Apply changing a topic several times (partitions added, a config,
// a partition change) changes its own copy, and the image it was given
// keeps what it had.
func TestApplyManyChangesToOneTopic(t *testing.T) {
	img, err := Apply(Empty(), 0, createTopic("a", 2))
	if err != nil {
		t.Fatal(err)
	}
	old := img.Topics["a"]
	id := old.ID
	v := "1000"
	leader := int32(3)
	next, err := Apply(img, 1, []Record{
		{Partition: &PartitionRecord{TopicID: id, Partition: 2, Replicas: []int32{0}}},
		{Config: &ConfigRecord{ResourceType: ResourceTopic, ResourceName: "a", Name: "retention.ms", Value: &v}},
		{PartitionChange: &PartitionChangeRecord{TopicID: id, Partition: 0, Leader: &leader}},
		{Partition: &PartitionRecord{TopicID: id, Partition: 3, Replicas: []int32{0}}},
		{Config: &ConfigRecord{ResourceType: ResourceTopic, ResourceName: "a", Name: "segment.ms", Value: &v}},
	})
	if err != nil {
		t.Fatal(err)
	}
	nt := next.Topics["a"]
	if len(nt.Partitions) != 4 || nt.Partitions[0].Leader != 3 || len(nt.Configs) != 2 || next.TopicIDs[id] != nt {
		t.Fatalf("next: %d partitions, leader %d, configs %v", len(nt.Partitions), nt.Partitions[0].Leader, nt.Configs)
	}
	if img.Topics["a"] != old || len(old.Partitions) != 2 || old.Partitions[0].Leader != 0 || len(old.Configs) != 0 {
		t.Fatalf("the old image changed: %d partitions, leader %d, configs %v", len(old.Partitions), old.Partitions[0].Leader, old.Configs)
	}
}

// Creating a topic is linear in its partitions: each partition record
// used to copy the topic's growing partition slice (10,000 partitions:
// 0.65 s at every start that replayed the creation). 20,000 partitions
// copied that way allocate over 1.6 GB; once, a few megabytes.
func TestApplyCreateTopicLinear(t *testing.T) {
	recs := createTopic("big", 20000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	next, err := Apply(Empty(), 0, recs)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(next.Topics["big"].Partitions); n != 20000 {
		t.Fatalf("%d partitions", n)
	}
	if b := after.TotalAlloc - before.TotalAlloc; b > 64<<20 {
		t.Fatalf("creating 20,000 partitions allocated %d MB", b>>20)
	}
}

func TestApplyRejects(t *testing.T) {
	img, _ := Apply(Empty(), 0, createTopic("a", 1))
	bad := [][]Record{
		createTopic("a", 1),
		{{Partition: &PartitionRecord{TopicID: NewUUID()}}},
		{{RemoveTopic: &RemoveTopicRecord{ID: NewUUID()}}},
		{{}},
		{{ProducerIDs: &ProducerIDsRecord{NextProducerID: 0}}},
	}
	for i, recs := range bad {
		if _, err := Apply(img, 1, recs); err == nil {
			t.Errorf("case %d: no error", i)
		}
	}
}

func TestStoreReplayAndSnapshot(t *testing.T) {
	fs := vfs.NewMem()
	dir := "/meta"
	s, err := Open(fs, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	clusterID := s.Image().ClusterID
	for i := range snapshotEvery + 10 {
		name := "t" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		if _, err := s.Update(func(*Image) ([]Record, error) { return createTopic(name, 1), nil }); err != nil {
			t.Fatal(err)
		}
	}
	want := s.Image()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Only synced data survives: Update syncs, so a crash keeps all.
	crashed := fs.Crash()
	s2, err := Open(crashed, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got := s2.Image()
	if got.ClusterID != clusterID || got.Offset != want.Offset || len(got.Topics) != len(want.Topics) {
		t.Fatalf("after replay: cluster %q offset %d topics %d; want %q %d %d",
			got.ClusterID, got.Offset, len(got.Topics), clusterID, want.Offset, len(want.Topics))
	}
	for name, t1 := range want.Topics {
		t2 := got.Topics[name]
		if t2 == nil || t2.ID != t1.ID || !reflect.DeepEqual(t2.Partitions, t1.Partitions) {
			t.Fatalf("topic %s differs after replay", name)
		}
	}
}

// writeLegacy writes a store as the metadata package wrote it before
// the log was replicated: meta.properties, a snapshot of snap (when not
// nil), and frames of batches after it, then tail bytes.
func writeLegacy(t testing.TB, fs vfs.FS, dir, clusterID string, snap *Image, batches [][]Record, tail []byte) {
	t.Helper()
	if err := fs.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := vfs.WriteFileAtomic(fs, dir, filepath.Join(dir, legacyMetaName), []byte("version=1\ncluster.id="+clusterID+"\n")); err != nil {
		t.Fatal(err)
	}
	offset := int64(-1)
	if snap != nil {
		data, err := encodeSnapshot(snap)
		if err != nil {
			t.Fatal(err)
		}
		if err := vfs.WriteFileAtomic(fs, dir, filepath.Join(dir, legacySnapshotName), data); err != nil {
			t.Fatal(err)
		}
		offset = snap.Offset
	}
	var log []byte
	for _, recs := range batches {
		offset++
		payload, err := json.Marshal(frame{Offset: offset, Records: recs})
		if err != nil {
			t.Fatal(err)
		}
		log = binary.BigEndian.AppendUint32(log, uint32(len(payload)))
		log = binary.BigEndian.AppendUint32(log, batch.Checksum(payload))
		log = append(log, payload...)
	}
	log = append(log, tail...)
	if err := vfs.WriteFileAtomic(fs, dir, filepath.Join(dir, legacyLogName), log); err != nil {
		t.Fatal(err)
	}
}

// TestLegacyImport: a data directory written before the metadata log
// was replicated opens with its topics, ACLs and cluster ID (snapshot,
// log and a torn tail as the old recovery read them), once: the legacy
// files are renamed and a restart, crash or not, keeps the image.
func TestLegacyImport(t *testing.T) {
	fs := vfs.NewMem()
	snap, err := Apply(Empty(), 4, createTopic("a", 2))
	if err != nil {
		t.Fatal(err)
	}
	acl := NewUUID()
	writeLegacy(t, fs, "/m", "legacy-cluster", snap, [][]Record{
		createTopic("b", 3),
		{{Acl: &AclRecord{ID: acl, ResourceType: 2, ResourceName: "b", PatternType: 3, Principal: "User:bob", Host: "*", Operation: 3, Permission: 3}}},
	}, []byte{0, 0, 1, 0, 1, 2, 3, 4, 5, 6})
	check := func(s *Store, when string) {
		t.Helper()
		img := s.Image()
		if img.ClusterID != "legacy-cluster" || img.Topics["a"] == nil || img.Topics["b"] == nil || len(img.Topics["b"].Partitions) != 3 || img.Acls[acl] == nil {
			t.Fatalf("%s: cluster %q topics %v acls %d", when, img.ClusterID, img.TopicNames(), len(img.Acls))
		}
	}
	s, err := Open(fs, "/m", nil)
	if err != nil {
		t.Fatal(err)
	}
	check(s, "imported")
	for _, name := range legacyFiles {
		if _, err := fs.Stat(filepath.Join("/m", name)); !vfs.IsNotExist(err) {
			t.Errorf("%s still there after the import (err %v)", name, err)
		}
		if _, err := fs.Stat(filepath.Join("/m", name+legacySuffix)); err != nil {
			t.Errorf("%s not kept: %v", name+legacySuffix, err)
		}
	}
	if _, err := s.Update(func(*Image) ([]Record, error) { return createTopic("c", 1), nil }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(fs.Crash(), "/m", nil)
	if err != nil {
		t.Fatal(err)
	}
	check(s, "reopened")
	if s.Image().Topics["c"] == nil {
		t.Fatal("topic c lost")
	}
	s.Close()
}

// TestLegacyImportedOnce: a crash after the import was committed but
// before the legacy files were renamed does not import them again.
func TestLegacyImportedOnce(t *testing.T) {
	fs := vfs.NewMem()
	writeLegacy(t, fs, "/m", "legacy", nil, [][]Record{createTopic("a", 1)}, nil)
	s, err := Open(fs, "/m", nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, name := range []string{legacyMetaName, legacyLogName} {
		if err := fs.Rename(filepath.Join("/m", name+legacySuffix), filepath.Join("/m", name)); err != nil {
			t.Fatal(err)
		}
	}
	s, err = Open(fs, "/m", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if img := s.Image(); img.ClusterID != "legacy" || len(img.Topics) != 1 {
		t.Fatalf("cluster %q topics %v", img.ClusterID, img.TopicNames())
	}
}

func TestUpdateErrorCommitsNothing(t *testing.T) {
	s, err := Open(vfs.NewMem(), "/m", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := s.Image()
	if _, err := s.Update(func(*Image) ([]Record, error) { return []Record{{}}, nil }); err == nil {
		t.Fatal("invalid record committed")
	}
	if s.Image() != before {
		t.Fatal("image changed after failed update")
	}
}

// FuzzLegacyImport: whatever a legacy log holds, opening it imports
// what its valid frames say or refuses, never panics.
func FuzzLegacyImport(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 0, 0, 0, 0, '{', '}'})
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := vfs.NewMem()
		fs.MkdirAll("/m")
		file, _ := fs.Create("/m/" + legacyLogName)
		file.Write(data)
		file.Sync()
		file.Close()
		s, err := Open(fs, "/m", nil)
		if err != nil {
			return // a record that does not apply is a refused log, not a panic
		}
		s.Close()
	})
}

// TestScramCredentialsReplayAndSnapshot: SCRAM credentials set and
// deleted survive both a replay of the log and a snapshot.
func TestScramCredentialsReplayAndSnapshot(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open(fs, "/meta", nil)
	if err != nil {
		t.Fatal(err)
	}
	set := func(user, mech string, key byte) Record {
		return Record{Scram: &ScramRecord{User: user, Mechanism: mech, Salt: []byte("salt"), Iterations: 4096, StoredKey: []byte{key}, ServerKey: []byte{key + 1}}}
	}
	steps := [][]Record{
		{set("alice", "SCRAM-SHA-256", 1), set("alice", "SCRAM-SHA-512", 3), set("bob", "SCRAM-SHA-256", 5)},
		{set("alice", "SCRAM-SHA-256", 7), {Scram: &ScramRecord{User: "bob", Mechanism: "SCRAM-SHA-256"}}},
	}
	before := s.Image()
	for _, recs := range steps {
		if _, err := s.Update(func(*Image) ([]Record, error) { return recs, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if len(before.Scram) != 0 {
		t.Error("Apply changed an earlier image")
	}
	check := func(img *Image, when string) {
		t.Helper()
		if _, ok := img.Scram["bob"]; ok {
			t.Errorf("%s: bob's only credential deleted, user still listed", when)
		}
		a := img.Scram["alice"]
		if len(a) != 2 || a["SCRAM-SHA-256"].StoredKey[0] != 7 || a["SCRAM-SHA-512"].ServerKey[0] != 4 || a["SCRAM-SHA-512"].Iterations != 4096 {
			t.Errorf("%s: alice %+v", when, a)
		}
	}
	check(s.Image(), "live")
	// Enough updates for a snapshot, then a replay of log and snapshot.
	forceSnapshot(t, s)
	s.Close()
	s2, err := Open(fs.Crash(), "/meta", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	check(s2.Image(), "after replay")
	if _, err := Apply(s2.Image(), 1<<40, []Record{{Scram: &ScramRecord{Mechanism: "SCRAM-SHA-256"}}}); err == nil {
		t.Error("credential without a user applied")
	}
}

// TestAclsReplayAndSnapshot: ACL bindings added and removed survive a
// replay of the log and a snapshot, and AclsChanged moves only with them.
func TestAclsReplayAndSnapshot(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open(fs, "/meta", nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := []UUID{NewUUID(), NewUUID(), NewUUID()}
	add := func(i int, name string) Record {
		return Record{Acl: &AclRecord{ID: ids[i], ResourceType: 2, ResourceName: name, PatternType: 3,
			Principal: "User:alice", Host: "*", Operation: 3, Permission: 3}}
	}
	for _, recs := range [][]Record{
		{add(0, "a"), add(1, "b")},
		{add(2, "c"), {Acl: &AclRecord{ID: ids[1], Remove: true}}},
	} {
		if _, err := s.Update(func(*Image) ([]Record, error) { return recs, nil }); err != nil {
			t.Fatal(err)
		}
	}
	changed := s.Image().AclsChanged
	if _, err := s.Update(func(*Image) ([]Record, error) { return createTopic("x", 1), nil }); err != nil {
		t.Fatal(err)
	}
	if s.Image().AclsChanged != changed {
		t.Error("a topic's creation moved AclsChanged")
	}
	check := func(img *Image, when string) {
		t.Helper()
		if len(img.Acls) != 2 || img.Acls[ids[0]].ResourceName != "a" || img.Acls[ids[2]].ResourceName != "c" || img.Acls[ids[2]].Principal != "User:alice" {
			t.Errorf("%s: ACLs %+v", when, img.Acls)
		}
	}
	s2 := checkReplayAndSnapshot(t, fs, s, check)
	for _, bad := range []*AclRecord{{ID: ids[1], Remove: true}, {ID: ids[0]}} {
		if _, err := Apply(s2.Image(), 1<<40, []Record{{Acl: bad}}); err == nil {
			t.Errorf("%+v applied", bad)
		}
	}
}

// forceSnapshot creates enough topics for s to write a snapshot.
func forceSnapshot(t *testing.T, s *Store) {
	t.Helper()
	for i := range snapshotEvery + 1 {
		name := "t" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		if _, err := s.Update(func(*Image) ([]Record, error) { return createTopic(name, 1), nil }); err != nil {
			t.Fatal(err)
		}
	}
}

// TestQuotasReplayAndSnapshot: client quotas set, changed and removed
// survive a replay of the log and a snapshot; an entity with no quota
// left is gone.
func TestQuotasReplayAndSnapshot(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open(fs, "/meta", nil)
	if err != nil {
		t.Fatal(err)
	}
	alice := "alice"
	user := []QuotaEntityPart{{Type: "user", Name: &alice}}
	// The same entity given in another order is the same entity.
	userClient := []QuotaEntityPart{{Type: "user", Name: &alice}, {Type: "client-id"}}
	clientUser := []QuotaEntityPart{{Type: "client-id"}, {Type: "user", Name: &alice}}
	set := func(e []QuotaEntityPart, k string, v float64) Record {
		return Record{Quota: &QuotaRecord{Entity: e, Key: k, Value: v}}
	}
	for _, recs := range [][]Record{
		{set(user, "producer_byte_rate", 1024), set(userClient, "consumer_byte_rate", 2048)},
		{set(clientUser, "consumer_byte_rate", 4096), set(userClient, "producer_byte_rate", 10)},
		{{Quota: &QuotaRecord{Entity: user, Key: "producer_byte_rate", Remove: true}}},
	} {
		if _, err := s.Update(func(*Image) ([]Record, error) { return recs, nil }); err != nil {
			t.Fatal(err)
		}
	}
	check := func(img *Image, when string) {
		t.Helper()
		if len(img.Quotas) != 1 {
			t.Fatalf("%s: %d entities, want 1: %v", when, len(img.Quotas), img.Quotas)
		}
		q := img.Quotas[QuotaKey(userClient)]
		if q == nil || q.Values["consumer_byte_rate"] != 4096 || q.Values["producer_byte_rate"] != 10 || len(q.Entity) != 2 ||
			q.Entity[0].Type != "client-id" || q.Entity[0].Name != nil || *q.Entity[1].Name != "alice" {
			t.Errorf("%s: %+v", when, q)
		}
	}
	checkReplayAndSnapshot(t, fs, s, check)
}

// checkReplayAndSnapshot runs check on s's image live, after a crash
// and a replay of the log, and after a snapshot and another crash, and
// returns the store last opened (closed at the test's end).
func checkReplayAndSnapshot(t *testing.T, fs *vfs.MemFS, s *Store, check func(img *Image, when string)) *Store {
	t.Helper()
	check(s.Image(), "live")
	s.Close()
	fs = fs.Crash()
	s, err := Open(fs, "/meta", nil)
	if err != nil {
		t.Fatal(err)
	}
	check(s.Image(), "after replaying the log")
	forceSnapshot(t, s)
	s.Close()
	if s, err = Open(fs.Crash(), "/meta", nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	check(s.Image(), "after a snapshot")
	return s
}
