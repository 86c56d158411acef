// Package probe asks a broker which APIs it advertises, with a raw
// ApiVersions v0 request: independent of the clients under test, so a
// client's own negotiation quirks cannot hide or fake broker support.
package probe

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Range is an advertised [Min, Max] version range.
type Range struct{ Min, Max int16 }

// ApiVersions returns the broker's advertised ranges by API key.
func ApiVersions(addr string) (map[int16]Range, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(0)
	// Request header v1: key, version, correlation ID, client ID.
	body := req.AppendTo(nil)
	hdr := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	hdr = binary.BigEndian.AppendUint16(hdr, 0)
	hdr = binary.BigEndian.AppendUint32(hdr, 1)
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(len("interop-probe")))
	hdr = append(hdr, "interop-probe"...)
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(hdr)+len(body)))
	frame = append(append(frame, hdr...), body...)
	if _, err := c.Write(frame); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 1<<20 {
		return nil, fmt.Errorf("ApiVersions response size %d", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, err
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	if err := resp.ReadFrom(buf[4:]); err != nil { // skip correlation ID
		return nil, err
	}
	if resp.ErrorCode != 0 {
		return nil, fmt.Errorf("ApiVersions error code %d", resp.ErrorCode)
	}
	out := map[int16]Range{}
	for _, k := range resp.ApiKeys {
		out[k.ApiKey] = Range{k.MinVersion, k.MaxVersion}
	}
	return out, nil
}

// GroupAPIs are the keys a classic consumer group needs: FindCoordinator,
// JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch.
var GroupAPIs = []int16{10, 11, 14, 12, 13, 8, 9}

// Groups reports whether the broker advertises consumer groups. It is
// true as soon as any group API is advertised, so a half-finished
// implementation fails the group cases instead of skipping them.
func Groups(addr string) (bool, error) {
	vs, err := ApiVersions(addr)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(GroupAPIs, func(k int16) bool { _, ok := vs[k]; return ok }), nil
}

// Idempotence reports whether the broker advertises InitProducerID, which
// idempotent producers need before their first produce.
func Idempotence(addr string) (bool, error) {
	vs, err := ApiVersions(addr)
	if err != nil {
		return false, err
	}
	_, ok := vs[22]
	return ok, nil
}
