package server

import (
	"bytes"
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/wire"
)

// anyVersion serves every key at every version kmsg knows.
type anyVersion struct{}

func (anyVersion) Versions(key int16) (int16, int16, bool) {
	r := kmsg.RequestForKey(key)
	if r == nil {
		return 0, 0, false
	}
	return 0, r.MaxVersion(), true
}

func (anyVersion) Serve(context.Context, *wire.Request, func(kmsg.Response)) {}

// frameOf encodes req as a client does, without the size prefix the
// reader strips.
func frameOf(req kmsg.Request) []byte {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("bench-client"))
	return f.AppendRequest(nil, req, 7)[4:]
}

// BenchmarkDecode is the reader's per-request work between the socket
// and the handler: header parse, version check and kmsg body decode
// (Produce without copying its record batches).
func BenchmarkDecode(b *testing.B) {
	produce := kmsg.NewPtrProduceRequest()
	produce.SetVersion(11)
	produce.Acks = -1
	produce.TimeoutMillis = 30000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "events"
	for p := range int32(8) {
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition = p
		pp.Records = bytes.Repeat([]byte{1}, 16<<10)
		pt.Partitions = append(pt.Partitions, pp)
	}
	produce.Topics = append(produce.Topics, pt)

	fetch := kmsg.NewPtrFetchRequest()
	fetch.SetVersion(13)
	fetch.ReplicaID = -1
	fetch.MaxWaitMillis = 500
	fetch.MaxBytes = 50 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.TopicID = [16]byte{1}
	for p := range int32(8) {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition = p
		fp.FetchOffset = 1 << 30
		fp.PartitionMaxBytes = 1 << 20
		ft.Partitions = append(ft.Partitions, fp)
	}
	fetch.Topics = append(fetch.Topics, ft)

	metadata := kmsg.NewPtrMetadataRequest()
	metadata.SetVersion(12)
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("events")
	metadata.Topics = append(metadata.Topics, mt)

	c := &Conn{server: &Server{handler: anyVersion{}}, client: &wire.Client{}}
	for _, bc := range []struct {
		name string
		req  kmsg.Request
	}{{"Produce8x16KiB", produce}, {"Fetch8Partitions", fetch}, {"Metadata", metadata}} {
		frame := frameOf(bc.req)
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.decode(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
