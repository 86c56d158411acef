package broker

import (
	"path/filepath"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/vfs"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// DescribeLogDirs: v1-5
//
// Version notes:
//   - v2: flexible
//   - v3: top-level ErrorCode
//   - v4: TotalBytes, UsableBytes of each directory (KIP-827)
//   - v5: IsCordoned (KIP-1066): never, Gregor has one data directory
//
// Gregor has one log directory, the data directory; each partition's
// size is the sum of its segments' .log files, as Kafka reports it. The
// offset lag is 0: there are no future replicas being moved in.
func init() { registerSync(35, 1, 5, (*Broker).handleDescribeLogDirs) }

func (b *Broker) handleDescribeLogDirs(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.DescribeLogDirsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	if !b.authorizedCluster(req, kmsg.ACLOperationDescribe) {
		// No directories; the error is told from v3 (Kafka's
		// handleDescribeLogDirsRequest).
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp
	}
	img := b.meta.Image()
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = b.dir
	if abs, err := filepath.Abs(b.dir); err == nil && b.fs == vfs.Default {
		dir.Dir = abs
	}
	dir.TotalBytes, dir.UsableBytes = -1, -1
	if b.fs == vfs.Default {
		if total, usable, ok := diskSpace(b.dir); ok {
			dir.TotalBytes, dir.UsableBytes = total, usable
		}
	}
	type want struct {
		topic string
		parts []int32 // nil: all
	}
	// Kafka collects the requested partitions into a set and answers
	// each topic once, so a topic named twice is merged, not repeated.
	var wants []*want
	if r.Topics == nil {
		for _, name := range img.TopicNames() {
			wants = append(wants, &want{topic: name})
		}
	} else {
		byTopic := map[string]*want{}
		for _, t := range r.Topics {
			w := byTopic[t.Topic]
			if w == nil {
				w = &want{topic: t.Topic, parts: []int32{}}
				byTopic[t.Topic] = w
				wants = append(wants, w)
			}
			w.parts = append(w.parts, t.Partitions...)
		}
	}
	for _, w := range wants {
		t, ok := img.Topic(w.topic)
		if !ok {
			continue // Kafka leaves unknown partitions out
		}
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = t.Name
		for i := range t.Partitions {
			idx := int32(i)
			if w.parts != nil && !slices.Contains(w.parts, idx) {
				continue
			}
			p := hostedAt(b.partitions(t.ID), idx) // followers' logs too
			if p == nil {
				continue
			}
			dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			dp.Partition = idx
			dp.Size = p.log.Size()
			dt.Partitions = append(dt.Partitions, dp)
		}
		if len(dt.Partitions) > 0 {
			dir.Topics = append(dir.Topics, dt)
		}
	}
	resp.Dirs = append(resp.Dirs, dir)
	return resp
}
