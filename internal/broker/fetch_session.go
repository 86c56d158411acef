package broker

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch sessions (KIP-227). A consumer that fetches many partitions sends
// them all once (epoch 0: a new session); afterwards (epoch n > 0) it
// sends only partitions whose fetch position changed and those to forget,
// and the broker answers only partitions with something new: records, an
// error, or a moved high watermark, last stable offset or log start
// offset. Epoch -1 closes the session; session ID 0 with epoch -1 is a
// plain sessionless fetch.

// Session epochs with special meaning.
const (
	sessionInitialEpoch = 0
	sessionFinalEpoch   = -1
)

// fetchItem is one partition a fetch reads: from the request, or from the
// session for an incremental fetch.
type fetchItem struct {
	topic   string
	topicID [16]byte
	req     *kmsg.FetchRequestTopicPartition
	// sp is the session's entry, nil without a session.
	sp *sessionPartition
}

// sessionKey names a partition in a session: by topic ID (Fetch v13+)
// or by name.
type sessionKey struct {
	topicID   [16]byte
	topic     string
	partition int32
}

// sessionPartition is a partition's state in a session.
type sessionPartition struct {
	key sessionKey
	req kmsg.FetchRequestTopicPartition
	// sent* are what the last response told the client; a partition is
	// answered again when one of them moves.
	sentHW, sentLSO, sentLogStart int64
	sentOnce                      bool
	// answered marks, while a response is assembled, that it holds
	// this partition (see rotateAnsweredLocked).
	answered bool
}

// fetchSession is one client's incremental fetch state.
type fetchSession struct {
	id int32
	// mu guards the fields below. A client has one fetch in flight per
	// session; the lock only protects against misbehaving ones.
	mu    sync.Mutex
	epoch int32 // the epoch the next request must carry
	// usesTopicIDs is set for a session created by Fetch v13+, which
	// names topics by ID: its requests must all be v13+, and those of
	// a session by name below v13.
	usesTopicIDs bool
	parts        []*sessionPartition
	index        map[sessionKey]*sessionPartition
	lastUsed     time.Time
	// inUse is set while a fetch of this session is being answered.
	inUse bool
	// moved is rotateAnsweredLocked's scratch space, kept between
	// fetches.
	moved []*sessionPartition
}

// fetchSessionCache holds the sessions, bounded by
// max.incremental.fetch.session.cache.slots; the least recently used
// idle session is evicted for a new one.
type fetchSessionCache struct {
	mu       sync.Mutex
	sessions map[int32]*fetchSession
}

func (c *fetchSessionCache) get(id int32) *fetchSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessions[id]
}

func (c *fetchSessionCache) remove(id int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sessions, id)
}

// create returns a new session, or nil when the cache is full of
// sessions in use (the fetch is then answered without a session).
func (c *fetchSessionCache) create(max int, now time.Time) *fetchSession {
	if max <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessions == nil {
		c.sessions = map[int32]*fetchSession{}
	}
	if len(c.sessions) >= max {
		var oldest *fetchSession
		for _, s := range c.sessions {
			s.mu.Lock()
			idle := !s.inUse
			used := s.lastUsed
			s.mu.Unlock()
			if idle && (oldest == nil || used.Before(oldest.lastUsed)) {
				oldest = s
			}
		}
		if oldest == nil {
			return nil
		}
		delete(c.sessions, oldest.id)
	}
	s := &fetchSession{epoch: 1, index: map[sessionKey]*sessionPartition{}, lastUsed: now}
	for {
		s.id = rand.Int32N(1<<31-1) + 1
		if _, taken := c.sessions[s.id]; !taken {
			break
		}
	}
	c.sessions[s.id] = s
	return s
}

// upsert adds or updates a partition from a request and returns its entry.
func (s *fetchSession) upsertLocked(key sessionKey, rp *kmsg.FetchRequestTopicPartition) *sessionPartition {
	if sp, ok := s.index[key]; ok {
		sp.req = *rp
		return sp
	}
	sp := &sessionPartition{key: key, req: *rp}
	s.index[key] = sp
	s.parts = append(s.parts, sp)
	return sp
}

// forgetLocked removes the partitions of keys.
func (s *fetchSession) forgetLocked(keys []sessionKey) {
	n := len(s.index)
	for _, k := range keys {
		delete(s.index, k)
	}
	if len(s.index) == n {
		return
	}
	kept := s.parts[:0]
	for _, sp := range s.parts {
		if s.index[sp.key] == sp {
			kept = append(kept, sp)
		}
	}
	clear(s.parts[len(kept):])
	s.parts = kept
}

// sessionFetchItems resolves the partitions a fetch reads and the session
// it belongs to. A non-nil error is a top-level fetch error.
func (b *Broker) sessionFetchItems(r *kmsg.FetchRequest) ([]fetchItem, *fetchSession, *kerr.Error) {
	byID := r.Version >= 13
	keyOf := func(topic string, id [16]byte, p int32) sessionKey {
		if byID {
			return sessionKey{topicID: id, partition: p}
		}
		return sessionKey{topic: topic, partition: p}
	}
	fromRequest := func(sp func(sessionKey, *kmsg.FetchRequestTopicPartition) *sessionPartition) []fetchItem {
		var items []fetchItem
		for i := range r.Topics {
			rt := &r.Topics[i]
			for j := range rt.Partitions {
				rp := &rt.Partitions[j]
				it := fetchItem{topic: rt.Topic, topicID: rt.TopicID, req: rp}
				if sp != nil {
					it.sp = sp(keyOf(rt.Topic, rt.TopicID, rp.Partition), rp)
					it.req = &it.sp.req
				}
				items = append(items, it)
			}
		}
		return items
	}
	now := b.now()

	switch {
	case r.SessionEpoch == sessionFinalEpoch:
		if r.SessionID != 0 {
			b.fetchSessions.remove(r.SessionID)
		}
		return fromRequest(nil), nil, nil

	case r.SessionEpoch == sessionInitialEpoch:
		if r.SessionID != 0 {
			b.fetchSessions.remove(r.SessionID)
		}
		s := b.fetchSessions.create(int(b.Config().Int("max.incremental.fetch.session.cache.slots")), now)
		if s == nil {
			return fromRequest(nil), nil, nil
		}
		s.mu.Lock()
		s.inUse = true
		s.usesTopicIDs = byID
		items := fromRequest(func(k sessionKey, rp *kmsg.FetchRequestTopicPartition) *sessionPartition {
			return s.upsertLocked(k, rp)
		})
		s.mu.Unlock()
		return items, s, nil
	}

	s := b.fetchSessions.get(r.SessionID)
	if s == nil {
		return nil, nil, kerr.FetchSessionIDNotFound
	}
	s.mu.Lock()
	items, empty, err := s.incrementalLocked(r, byID, keyOf, now)
	s.mu.Unlock()
	if empty {
		// Nothing left to fetch: Kafka closes the session and answers
		// without one (session ID 0), which tells the client to start
		// afresh (FetchManager.newContext). Removed outside s.mu: the
		// cache locks before it.
		b.fetchSessions.remove(s.id)
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return items, s, nil
}

// incrementalLocked applies an incremental fetch to the session and
// returns the partitions it reads; empty reports that none is left.
func (s *fetchSession) incrementalLocked(r *kmsg.FetchRequest, byID bool, keyOf func(string, [16]byte, int32) sessionKey, now time.Time) (items []fetchItem, empty bool, err *kerr.Error) {
	if s.epoch != r.SessionEpoch || s.inUse {
		return nil, false, kerr.InvalidFetchSessionEpoch
	}
	if s.usesTopicIDs != byID {
		// A session keys its partitions by topic ID or by name for
		// good: Kafka refuses a request of the other kind, after the
		// epoch check (FetchManager.newContext), and keeps the
		// session as it was.
		return nil, false, kerr.FetchSessionTopicIDError
	}
	for i := range r.Topics {
		rt := &r.Topics[i]
		for j := range rt.Partitions {
			s.upsertLocked(keyOf(rt.Topic, rt.TopicID, rt.Partitions[j].Partition), &rt.Partitions[j])
		}
	}
	var forget []sessionKey
	for _, ft := range r.ForgottenTopics {
		for _, p := range ft.Partitions {
			forget = append(forget, keyOf(ft.Topic, ft.TopicID, p))
		}
	}
	s.forgetLocked(forget)
	if len(s.parts) == 0 {
		s.inUse = true // being removed
		return nil, true, nil
	}
	s.inUse = true
	s.epoch++
	if s.epoch < 1 {
		s.epoch = 1 // wrap, skipping the special epochs
	}
	s.lastUsed = now
	items = make([]fetchItem, len(s.parts))
	for i, sp := range s.parts {
		items[i] = fetchItem{topic: sp.key.topic, topicID: sp.key.topicID, req: &sp.req, sp: sp}
	}
	return items, false, nil
}

// assembleFetch builds the response's topics from the partitions read.
// A full fetch answers every partition; an incremental one only those
// with news since the session's last response.
func assembleFetch(resp *kmsg.FetchResponse, items []fetchItem, parts []kmsg.FetchResponseTopicPartition, s *fetchSession, incremental bool) {
	if s != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.inUse = false
		resp.SessionID = s.id
	}
	resp.Topics = resp.Topics[:0]
	answered := 0
	for i := range items {
		it := &items[i]
		p := &parts[i]
		if sp := it.sp; sp != nil {
			changed := !sp.sentOnce || p.ErrorCode != 0 || len(p.RecordBatches) > 0 || p.PreferredReadReplica >= 0 ||
				p.HighWatermark != sp.sentHW || p.LastStableOffset != sp.sentLSO || p.LogStartOffset != sp.sentLogStart
			if incremental && !changed {
				continue
			}
			sp.sentOnce = true
			sp.sentHW, sp.sentLSO, sp.sentLogStart = p.HighWatermark, p.LastStableOffset, p.LogStartOffset
			if incremental {
				sp.answered = true
				answered++
			}
		}
		n := len(resp.Topics)
		if n == 0 || resp.Topics[n-1].Topic != it.topic || resp.Topics[n-1].TopicID != it.topicID {
			st := kmsg.NewFetchResponseTopic()
			st.Topic = it.topic
			st.TopicID = it.topicID
			resp.Topics = append(resp.Topics, st)
			n++
		}
		resp.Topics[n-1].Partitions = append(resp.Topics[n-1].Partitions, *p)
	}
	if answered > 0 {
		s.rotateAnsweredLocked(answered)
	}
}

// rotateAnsweredLocked moves the partitions the response answered (marked
// answered) behind the others, keeping the order within each group, as
// Kafka's incremental fetch does: reads fill a response's byte budget in
// session order, so without it a partition with a deep backlog would be
// read first every time and the partitions behind it would wait until
// it drained.
func (s *fetchSession) rotateAnsweredLocked(answered int) {
	if answered == len(s.parts) {
		for _, sp := range s.parts {
			sp.answered = false
		}
		return
	}
	moved := s.moved[:0]
	kept := s.parts[:0]
	for _, sp := range s.parts {
		if sp.answered {
			sp.answered = false
			moved = append(moved, sp)
		} else {
			kept = append(kept, sp)
		}
	}
	s.parts = append(kept, moved...)
	clear(moved)
	s.moved = moved[:0]
}
