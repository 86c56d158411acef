package broker

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/metadata"
)

// electPart describes one partition of a test image.
type electPart struct {
	replicas, isr []int32
	leader        int32
}

// electImage builds an image holding topics, each with its partitions,
// every partition at leader epoch 5.
func electImage(t *testing.T, topics map[string][]electPart) *metadata.Image {
	t.Helper()
	var recs []metadata.Record
	for _, name := range slices.Sorted(maps.Keys(topics)) {
		id := metadata.NewUUID()
		recs = append(recs, metadata.Record{Topic: &metadata.TopicRecord{Name: name, ID: id}})
		for i, p := range topics[name] {
			recs = append(recs, metadata.Record{Partition: &metadata.PartitionRecord{
				TopicID: id, Partition: int32(i), Replicas: p.replicas, ISR: p.isr, Leader: p.leader, LeaderEpoch: 5,
			}})
		}
	}
	img, err := metadata.Apply(metadata.Empty(), 0, recs)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// applyCommitted applies recs to img as the store commits them: through
// their JSON encoding, as every node decodes them from the log.
func applyCommitted(t *testing.T, img *metadata.Image, recs []metadata.Record) *metadata.Image {
	t.Helper()
	data, err := json.Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	var decoded []metadata.Record
	if err := json.Unmarshal(data, &decoded); err != nil {
		t.Fatal(err)
	}
	next, err := metadata.Apply(img, img.Offset+1, decoded)
	if err != nil {
		t.Fatal(err)
	}
	return next
}

// liveSet returns a liveness function: the brokers listed are live.
func liveSet(ids ...int32) func(int32) bool {
	return func(id int32) bool { return slices.Contains(ids, id) }
}

func TestElectionRecords(t *testing.T) {
	all := []int32{0, 1, 2}
	for _, tc := range []struct {
		name    string
		p       electPart
		live    []int32
		unclean bool
		// want is the partition after the records applied; nil: no
		// records at all.
		want *electPart
	}{
		{
			name: "dead leader, live ISR follower leads, ISR shrunk",
			p:    electPart{replicas: all, isr: all, leader: 0},
			live: []int32{1, 2},
			want: &electPart{isr: []int32{1, 2}, leader: 1},
		},
		{
			name: "dead leader, no live ISR member: offline, ISR kept",
			p:    electPart{replicas: all, isr: []int32{0}, leader: 0},
			live: []int32{1, 2},
			want: &electPart{isr: []int32{0}, leader: -1},
		},
		{
			name: "dead leader and dead ISR follower: offline, ISR kept whole",
			p:    electPart{replicas: all, isr: []int32{0, 1}, leader: 0},
			live: []int32{2},
			want: &electPart{isr: []int32{0, 1}, leader: -1},
		},
		{
			name: "offline, ISR still dead: nothing",
			p:    electPart{replicas: all, isr: []int32{0}, leader: -1},
			live: []int32{1, 2},
		},
		{
			name: "offline partition whose ISR member is back: elected",
			p:    electPart{replicas: all, isr: []int32{0}, leader: -1},
			live: all,
			want: &electPart{isr: []int32{0}, leader: 0},
		},
		{
			name: "offline partition, one ISR member back: elected, the dead one dropped",
			p:    electPart{replicas: all, isr: []int32{0, 1}, leader: -1},
			live: []int32{1, 2},
			want: &electPart{isr: []int32{1}, leader: 1},
		},
		{
			name:    "unclean: first live replica leads alone",
			p:       electPart{replicas: all, isr: []int32{0}, leader: 0},
			live:    []int32{2, 1},
			unclean: true,
			want:    &electPart{isr: []int32{1}, leader: 1},
		},
		{
			name:    "unclean offline partition with a live replica: elected",
			p:       electPart{replicas: all, isr: []int32{0}, leader: -1},
			live:    []int32{2},
			unclean: true,
			want:    &electPart{isr: []int32{2}, leader: 2},
		},
		{
			name:    "unclean, but no replica live: offline",
			p:       electPart{replicas: []int32{0, 1}, isr: []int32{0}, leader: 0},
			live:    []int32{2},
			unclean: true,
			want:    &electPart{isr: []int32{0}, leader: -1},
		},
		{
			name:    "unclean allowed, a live ISR member: a clean election",
			p:       electPart{replicas: all, isr: []int32{0, 2}, leader: 0},
			live:    []int32{1, 2},
			unclean: true,
			want:    &electPart{isr: []int32{2}, leader: 2},
		},
		{
			name: "live leader, dead follower in the ISR: ISR shrunk only",
			p:    electPart{replicas: all, isr: []int32{0, 1, 2}, leader: 0},
			live: []int32{0, 2},
			want: &electPart{isr: []int32{0, 2}, leader: 0},
		},
		{
			name: "everyone live: nothing",
			p:    electPart{replicas: all, isr: all, leader: 0},
			live: all,
		},
		{
			name: "dead follower outside the ISR: nothing",
			p:    electPart{replicas: all, isr: []int32{0, 1}, leader: 0},
			live: []int32{0, 1},
		},
		{
			name: "replicas order, not ISR order, picks the leader",
			p:    electPart{replicas: []int32{2, 0, 1}, isr: []int32{1, 0, 2}, leader: 2},
			live: []int32{0, 1},
			want: &electPart{isr: []int32{1, 0}, leader: 0},
		},
		{
			name: "ISR order kept when shrunk",
			p:    electPart{replicas: all, isr: []int32{2, 1, 0}, leader: 0},
			live: []int32{0, 2},
			want: &electPart{isr: []int32{2, 0}, leader: 0},
		},
		{
			name: "never an empty ISR: a live leader outside it keeps it",
			p:    electPart{replicas: all, isr: []int32{1}, leader: 0},
			live: []int32{0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := electImage(t, map[string][]electPart{"t": {tc.p}})
			asked := 0
			recs := electionRecords(img, liveSet(tc.live...), func(topic *metadata.Topic) bool {
				asked++
				if topic.Name != "t" {
					t.Errorf("unclean asked for topic %q", topic.Name)
				}
				return tc.unclean
			})
			if tc.want == nil {
				if len(recs) != 0 {
					t.Fatalf("records %+v, want none", recs[0].PartitionChange)
				}
				return
			}
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1", len(recs))
			}
			before := img.Topics["t"].Partitions[0]
			got := applyCommitted(t, img, recs).Topics["t"].Partitions[0]
			if got.Leader != tc.want.leader || !slices.Equal(got.ISR, tc.want.isr) {
				t.Errorf("leader %d ISR %v, want leader %d ISR %v", got.Leader, got.ISR, tc.want.leader, tc.want.isr)
			}
			wantEpoch := before.LeaderEpoch
			if tc.want.leader != before.Leader {
				wantEpoch++
			}
			if got.LeaderEpoch != wantEpoch {
				t.Errorf("leader epoch %d, want %d", got.LeaderEpoch, wantEpoch)
			}
			if got.PartitionEpoch != before.PartitionEpoch+1 {
				t.Errorf("partition epoch %d, want %d", got.PartitionEpoch, before.PartitionEpoch+1)
			}
			if !slices.Equal(got.Replicas, before.Replicas) {
				t.Errorf("replicas %v changed to %v", before.Replicas, got.Replicas)
			}
			if asked > 1 {
				t.Errorf("unclean asked %d times for one topic", asked)
			}
		})
	}
}

// TestElectionRecordsTopics: records come in topic name order, each
// topic with its own unclean setting, and a second pass over the
// result finds nothing left to do.
func TestElectionRecordsTopics(t *testing.T) {
	dead := electPart{replicas: []int32{0, 1}, isr: []int32{0}, leader: 0}
	fine := electPart{replicas: []int32{1, 0}, isr: []int32{1}, leader: 1}
	img := electImage(t, map[string][]electPart{
		"zeta":  {dead, fine, dead},
		"alpha": {fine, dead},
		"mid":   {fine},
	})
	unclean := func(topic *metadata.Topic) bool { return topic.Name == "zeta" }
	recs := electionRecords(img, liveSet(1), unclean)
	var order []string
	for _, r := range recs {
		t, _ := img.TopicByID(r.PartitionChange.TopicID)
		order = append(order, t.Name+"-"+strconv.Itoa(int(r.PartitionChange.Partition)))
	}
	if want := []string{"alpha-1", "zeta-0", "zeta-2"}; !slices.Equal(order, want) {
		t.Fatalf("records for %v, want %v", order, want)
	}
	next := applyCommitted(t, img, recs)
	if p := next.Topics["alpha"].Partitions[1]; p.Leader != -1 {
		t.Errorf("alpha-1 (clean only) leader %d, want offline", p.Leader)
	}
	if p := next.Topics["zeta"].Partitions[2]; p.Leader != 1 || !slices.Equal(p.ISR, []int32{1}) {
		t.Errorf("zeta-2 (unclean) leader %d ISR %v, want 1 [1]", p.Leader, p.ISR)
	}
	if again := electionRecords(next, liveSet(1), unclean); len(again) != 0 {
		t.Errorf("a second election changes %+v", again[0].PartitionChange)
	}
}

// TestControllerShutdownRecords: a broker shutting down cleanly hands
// over the partitions it leads to the first live ISR member in replicas
// order, leaves the ISRs of the partitions it follows under a live
// leader, and leaves alone those it alone can lead.
func TestControllerShutdownRecords(t *testing.T) {
	const self = 0
	img := electImage(t, map[string][]electPart{"t": {
		0: {replicas: []int32{0, 1, 2}, isr: []int32{0, 1, 2}, leader: 0}, // moves to 1
		1: {replicas: []int32{0, 1, 2}, isr: []int32{0}, leader: 0},       // sole ISR member: kept
		2: {replicas: []int32{1, 0, 2}, isr: []int32{1, 0, 2}, leader: 1}, // follower: leaves the ISR
		3: {replicas: []int32{0, 2, 1}, isr: []int32{0, 1, 2}, leader: 0}, // 2 dead: moves to 1
		4: {replicas: []int32{2, 0}, isr: []int32{2, 0}, leader: 2},       // dead leader: kept
		5: {replicas: []int32{0, 1}, isr: []int32{0, 1}, leader: -1},      // offline: kept
		6: {replicas: []int32{1, 2}, isr: []int32{1, 2}, leader: 1},       // not a replica
		7: {replicas: []int32{0, 2}, isr: []int32{0, 2}, leader: 0},       // only dead others: kept
	}})
	// self counts as live to the controller; shutdownRecords must not.
	live := liveSet(0, 1)
	recs := shutdownRecords(img, self, live)
	next := applyCommitted(t, img, recs)
	want := []electPart{
		0: {isr: []int32{1, 2}, leader: 1},
		1: {isr: []int32{0}, leader: 0},
		2: {isr: []int32{1, 2}, leader: 1},
		3: {isr: []int32{1, 2}, leader: 1},
		4: {isr: []int32{2, 0}, leader: 2},
		5: {isr: []int32{0, 1}, leader: -1},
		6: {isr: []int32{1, 2}, leader: 1},
		7: {isr: []int32{0, 2}, leader: 0},
	}
	changed := map[int32]bool{}
	for _, r := range recs {
		changed[r.PartitionChange.Partition] = true
	}
	for i, w := range want {
		before, got := img.Topics["t"].Partitions[i], next.Topics["t"].Partitions[i]
		if got.Leader != w.leader || !slices.Equal(got.ISR, w.isr) {
			t.Errorf("partition %d: leader %d ISR %v, want leader %d ISR %v", i, got.Leader, got.ISR, w.leader, w.isr)
		}
		if moved := before.Leader != got.Leader; moved != (got.LeaderEpoch == before.LeaderEpoch+1) {
			t.Errorf("partition %d: leader %d -> %d, epoch %d -> %d", i, before.Leader, got.Leader, before.LeaderEpoch, got.LeaderEpoch)
		}
		if unchanged := got.Leader == before.Leader && slices.Equal(got.ISR, before.ISR); unchanged == changed[int32(i)] {
			t.Errorf("partition %d: a record %v, a change %v", i, changed[int32(i)], !unchanged)
		}
	}
	if again := shutdownRecords(next, self, live); len(again) != 0 {
		t.Errorf("a second pass changes %+v", again[0].PartitionChange)
	}
}

// controllerCluster opens n brokers sharing one controller quorum over
// loopback, with props set on each, registered, and closes them when
// the test ends. Closing one is fine.
func controllerCluster(t *testing.T, n int, props map[string]string) []*Broker {
	t.Helper()
	var voters []string
	ls := make([]net.Listener, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls[i] = l
		voters = append(voters, fmt.Sprintf("%d@%s", i, l.Addr()))
	}
	level := slog.LevelWarn
	if os.Getenv("GREGOR_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	bs := make([]*Broker, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		m := map[string]string{"node.id": strconv.Itoa(i), "controller.quorum.voters": strings.Join(voters, ",")}
		for k, v := range props {
			m[k] = v
		}
		cfg, _, err := config.NewBroker(m)
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("node", i)
		wg.Add(1)
		// A broker opens once a quorum is up: open them together.
		go func() {
			defer wg.Done()
			// No client listener: only the metadata matters here.
			bs[i], errs[i] = Open(Options{Config: cfg, DataDir: t.TempDir(), Logger: log, ControllerListener: ls[i]})
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, b := range bs {
			if b != nil {
				b.Close()
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range bs {
		if err := b.Register(); err != nil {
			t.Fatal(err)
		}
	}
	return bs
}

// waitImage waits until b's image satisfies cond, and returns it.
func waitImage(t *testing.T, b *Broker, d time.Duration, what string, cond func(*metadata.Image) bool) *metadata.Image {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		img := b.meta.Image()
		if cond(img) {
			return img
		}
		if time.Now().After(deadline) {
			for _, p := range img.Topics["elect"].Partitions {
				t.Logf("partition %d: leader %d epoch %d ISR %v replicas %v", p.Partition, p.Leader, p.LeaderEpoch, p.ISR, p.Replicas)
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leadsOrFollows reports whether broker id leads a partition of topic
// or is in one's ISR.
func leadsOrFollows(img *metadata.Image, topic string, id int32) bool {
	for _, p := range img.Topics[topic].Partitions {
		if p.Leader == id || slices.Contains(p.ISR, id) {
			return true
		}
	}
	return false
}

// TestControllerElectsAndShutdownMoves: in a three-broker cluster with
// a topic of three replicas per partition, the controller fences a
// broker that stops without notice (its leaderships move to the next
// ISR replica, it leaves every ISR) within broker.session.timeout.ms;
// then a broker shutting down cleanly hands its leaderships to the
// remaining one before it stops.
func TestControllerElectsAndShutdownMoves(t *testing.T) {
	const session = 1500 * time.Millisecond
	bs := controllerCluster(t, 3, map[string]string{
		"broker.session.timeout.ms": strconv.Itoa(int(session / time.Millisecond)),
		// No follower is shrunk out of an ISR for lagging meanwhile.
		"replica.lag.time.max.ms": "600000",
	})
	// Open starts runController on every member of a cluster.
	id := metadata.NewUUID()
	recs := []metadata.Record{{Topic: &metadata.TopicRecord{Name: "elect", ID: id}}}
	for p := range int32(6) {
		replicas := []int32{p % 3, (p + 1) % 3, (p + 2) % 3}
		recs = append(recs, metadata.Record{Partition: &metadata.PartitionRecord{
			TopicID: id, Partition: p, Replicas: replicas, ISR: replicas, Leader: replicas[0],
		}})
	}
	if _, err := bs[0].meta.Update(func(*metadata.Image) ([]metadata.Record, error) { return recs, nil }); err != nil {
		t.Fatal(err)
	}
	var ctrl int32
	waitImage(t, bs[0], 10*time.Second, "a controller", func(*metadata.Image) bool {
		ctrl = bs[0].meta.Controller()
		return ctrl >= 0 && bs[ctrl].meta.Controller() == ctrl
	})
	// Everyone live: the controller changes nothing.
	time.Sleep(3 * controllerInterval)
	for _, p := range bs[ctrl].meta.Image().Topics["elect"].Partitions {
		if p.LeaderEpoch != 0 || len(p.ISR) != 3 {
			t.Fatalf("with every broker live, partition %d changed: leader %d epoch %d ISR %v", p.Partition, p.Leader, p.LeaderEpoch, p.ISR)
		}
	}

	// A broker other than the controller stops without notice.
	crashed := (ctrl + 1) % 3
	stopped := time.Now()
	bs[crashed].CloseAbruptly() // without notice: no controlled shutdown
	img := waitImage(t, bs[ctrl], 20*time.Second, "the stopped broker fenced", func(img *metadata.Image) bool {
		return !leadsOrFollows(img, "elect", crashed)
	})
	if d := time.Since(stopped); d < session-controllerInterval {
		t.Errorf("broker fenced %v after it stopped, before broker.session.timeout.ms (%v)", d, session)
	}
	for _, p := range img.Topics["elect"].Partitions {
		// The next replica in order leads what the stopped one led.
		want := p.Replicas[0]
		if want == crashed {
			want = p.Replicas[1]
		}
		wantEpoch := int32(0)
		if p.Replicas[0] == crashed {
			wantEpoch = 1
		}
		if p.Leader != want || p.LeaderEpoch != wantEpoch || len(p.ISR) != 2 {
			t.Errorf("partition %d: leader %d epoch %d ISR %v; want leader %d epoch %d, ISR without %d",
				p.Partition, p.Leader, p.LeaderEpoch, p.ISR, want, wantEpoch, crashed)
		}
	}

	// The other follower of the controller shuts down cleanly: the
	// controller leads everything, alone in every ISR.
	leaving := (ctrl + 2) % 3
	if err := bs[leaving].moveLeadershipsAway(); err != nil {
		t.Fatal(err)
	}
	img = bs[leaving].meta.Image()
	for _, p := range img.Topics["elect"].Partitions {
		if p.Leader != ctrl || !slices.Equal(p.ISR, []int32{ctrl}) {
			t.Errorf("after the controlled shutdown of %d, partition %d: leader %d ISR %v, want %d [%d]",
				leaving, p.Partition, p.Leader, p.ISR, ctrl, ctrl)
		}
	}
	// The controller alone is left in the ISRs: shutting it down moves
	// nothing (its partitions would go offline).
	before := waitImage(t, bs[ctrl], 10*time.Second, "the controller to apply the shutdown", func(cur *metadata.Image) bool {
		return cur.Offset >= img.Offset
	}).Offset
	if err := bs[ctrl].moveLeadershipsAway(); err != nil {
		t.Fatal(err)
	}
	if after := bs[ctrl].meta.Image().Offset; after != before {
		t.Errorf("a controlled shutdown of the last ISR member changed the metadata (offset %d -> %d)", before, after)
	}
}

func TestPreferredAndUncleanChanges(t *testing.T) {
	img := electImage(t, map[string][]electPart{"t": {
		{replicas: []int32{0, 1, 2}, isr: []int32{0, 1, 2}, leader: 0}, // preferred leads
		{replicas: []int32{0, 1, 2}, isr: []int32{0, 1, 2}, leader: 1}, // preferred can lead
		{replicas: []int32{0, 1, 2}, isr: []int32{1, 2}, leader: 1},    // preferred out of the ISR
		{replicas: []int32{2, 0, 1}, isr: []int32{2, 0, 1}, leader: 0}, // preferred not live
		{replicas: []int32{1, 2, 0}, isr: []int32{2}, leader: 2},       // leader not live, replicas are
		{replicas: []int32{2}, isr: []int32{2}, leader: -1},            // nothing live
	}})
	live := liveSet(0, 1)
	parts := img.Topics["t"].Partitions
	type want struct {
		leader int32
		err    error
	}
	preferred := []want{{-1, kerr.ElectionNotNeeded}, {0, nil}, {-1, kerr.PreferredLeaderNotAvailable},
		{-1, kerr.PreferredLeaderNotAvailable}, {-1, kerr.PreferredLeaderNotAvailable}, {-1, kerr.PreferredLeaderNotAvailable}}
	unclean := []want{{-1, kerr.ElectionNotNeeded}, {-1, kerr.ElectionNotNeeded}, {-1, kerr.ElectionNotNeeded},
		{-1, kerr.ElectionNotNeeded}, {1, nil}, {-1, kerr.EligibleLeadersNotAvailable}}
	for i, p := range parts {
		for _, tc := range []struct {
			kind  string
			elect func(*metadata.Partition, func(int32) bool) (*metadata.PartitionChangeRecord, *kerr.Error)
			want  want
		}{{"preferred", preferredChange, preferred[i]}, {"unclean", uncleanChange, unclean[i]}} {
			c, err := tc.elect(p, live)
			var gotErr error
			if err != nil {
				gotErr = err
			}
			leader := int32(-1)
			if c != nil {
				leader = *c.Leader
			}
			if gotErr != tc.want.err || leader != tc.want.leader {
				t.Errorf("partition %d, %s: leader %d, err %v; want %d, %v", i, tc.kind, leader, gotErr, tc.want.leader, tc.want.err)
			}
		}
	}
	// The unclean election of partition 4 takes the live replica 1, not
	// in the ISR, alone into it.
	if c, _ := uncleanChange(parts[4], live); c == nil || !slices.Equal(c.ISR, []int32{1}) {
		t.Errorf("unclean election of partition 4: %+v, want leader 1 with ISR [1]", c)
	}
	recs := preferredRecords(img, live)
	if len(recs) != 1 || recs[0].PartitionChange.Partition != 1 {
		t.Fatalf("preferredRecords: %+v, want partition 1 only", recs)
	}
	next := applyCommitted(t, img, recs)
	if p := next.Topics["t"].Partitions[1]; p.Leader != 0 || p.LeaderEpoch != 6 {
		t.Errorf("after the preferred election, partition 1: leader %d epoch %d, want 0 epoch 6", p.Leader, p.LeaderEpoch)
	}
}

// TestCloseWithoutQuorum: the last voter of a cluster stopping does not
// wait for an update that cannot commit. Its controller, finding the
// other two gone, tries to fence them; without a quorum that update
// would hold Close for its whole timeout (30 s).
func TestCloseWithoutQuorum(t *testing.T) {
	bs := controllerCluster(t, 3, map[string]string{"broker.session.timeout.ms": "500"})
	var ctrl int32
	waitImage(t, bs[0], 10*time.Second, "a controller", func(*metadata.Image) bool {
		ctrl = bs[0].meta.Controller()
		return ctrl >= 0 && bs[ctrl].meta.Controller() == ctrl
	})
	for i, b := range bs {
		if int32(i) != ctrl {
			b.CloseAbruptly()
		}
	}
	time.Sleep(2 * time.Second) // past the session timeout: fencing
	start := time.Now()
	bs[ctrl].CloseAbruptly()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the last broker took %v to close", d)
	}
}
