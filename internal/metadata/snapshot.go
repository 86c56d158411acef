package metadata

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/gregor-streaming/gregor/internal/batch"
)

// snapshot is the image's encoding in snapshots (of the replicated log,
// and of the legacy store).
type snapshot struct {
	Offset         int64                        `json:"offset"`
	ClusterID      string                       `json:"clusterId,omitempty"`
	Topics         []snapshotTopic              `json:"topics"`
	BrokerConfigs  map[string]map[string]string `json:"brokerConfigs"`
	NextProducerID int64                        `json:"nextProducerId"`
	Brokers        []*BrokerRecord              `json:"brokers"`
	Scram          []*ScramRecord               `json:"scram,omitempty"`
	Acls           []*AclRecord                 `json:"acls,omitempty"`
	Quotas         []*ClientQuota               `json:"quotas,omitempty"`
	Fenced         []int32                      `json:"fenced,omitempty"`
}

type snapshotTopic struct {
	Name       string            `json:"name"`
	ID         UUID              `json:"id"`
	Partitions []*Partition      `json:"partitions"`
	Configs    map[string]string `json:"configs"`
}

// encodeSnapshot encodes img: a line with the CRC-32C of the rest, then
// JSON.
func encodeSnapshot(img *Image) ([]byte, error) {
	snap := snapshot{
		Offset:         img.Offset,
		ClusterID:      img.ClusterID,
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
	snap.Fenced = slices.Sorted(maps.Keys(img.Fenced))
	data, err := json.Marshal(snap)
	if err != nil {
		return nil, err
	}
	// A checksum line first, so a torn snapshot is detected (the rename
	// makes it unlikely, but disks lie).
	return append(fmt.Appendf(nil, "%08x\n", batch.Checksum(data)), data...), nil
}

// decodeSnapshot decodes what encodeSnapshot encoded.
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
	img.ClusterID = snap.ClusterID
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
	for _, id := range snap.Fenced {
		if img.Fenced == nil {
			img.Fenced = map[int32]bool{}
		}
		img.Fenced[id] = true
	}
	return img, nil
}
