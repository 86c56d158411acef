package stream_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/stream"
)

type customer struct {
	Name    string `json:"name"`
	Country string `json:"country"`
}

type order struct {
	ID     string  `json:"id"`
	Amount float64 `json:"amount"`
}

type enriched struct {
	Order    string  `json:"order"`
	Amount   float64 `json:"amount"`
	Customer string  `json:"customer"`
	Country  string  `json:"country,omitempty"`
}

func orderTopology() *stream.Builder {
	b := stream.NewBuilder()
	customers := stream.SourceTable(b, "customers", "customers", stream.String(), stream.JSON[customer]())
	orders := stream.Source(b, "orders", stream.String(), stream.JSON[order]())
	stream.Join(orders, customers, func(_ string, o order, c customer) enriched {
		return enriched{Order: o.ID, Amount: o.Amount, Customer: c.Name, Country: c.Country}
	}).To("orders-enriched", stream.String(), stream.JSON[enriched]())
	stream.LeftJoin(orders, customers, func(id string, o order, c customer, found bool) enriched {
		if !found {
			return enriched{Order: o.ID, Amount: o.Amount, Customer: "unknown:" + id}
		}
		return enriched{Order: o.ID, Amount: o.Amount, Customer: c.Name}
	}).To("orders-all", stream.String(), stream.JSON[enriched]())
	return b
}

// Stream-table join: orders enriched with the customer table, keyed by
// customer ID on co-partitioned topics. Table updates and deletions
// apply to later orders.
func TestStreamTableJoin(t *testing.T) {
	br := newBroker(t)
	for _, topic := range []string{"customers", "orders", "orders-enriched", "orders-all"} {
		br.CreateTopic(topic, 3, nil)
	}
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	produce(t, br,
		keyed("customers", "c1", js(customer{"Ada", "UK"})),
		keyed("customers", "c2", js(customer{"Grace", "US"})),
		keyed("customers", "c3", js(customer{"Linus", "FI"})),
	)
	r := start(t, orderTopology(), stream.Config{
		ApplicationID: "orders", Brokers: []string{br.Addr}, ProcessingGuarantee: stream.ExactlyOnce, ClientOpts: quickGroup(),
	})
	// Records of the two topics are processed in fetch order, not by
	// timestamp: let the table load before the orders arrive.
	waitFor(t, 30*time.Second, func() (bool, string) {
		s := r.app.Stats()
		return s.Processed == 3, "customers loaded: " + itoa(s.Processed)
	}, r)
	produce(t, br,
		keyed("orders", "c1", js(order{"o1", 10})),
		keyed("orders", "c2", js(order{"o2", 20})),
		keyed("orders", "c9", js(order{"o3", 30})), // no such customer
		keyed("orders", "c3", js(order{"o4", 40})),
	)
	waitFor(t, 30*time.Second, func() (bool, string) {
		s := r.app.Stats()
		return s.Processed == 7, "orders processed: " + itoa(s.Processed)
	}, r)
	// Ada moves, Linus is deleted.
	produce(t, br,
		keyed("customers", "c1", js(customer{"Ada", "FR"})),
		keyed("customers", "c3", nil),
	)
	waitFor(t, 30*time.Second, func() (bool, string) {
		s := r.app.Stats()
		return s.Processed == 9, "updates processed: " + itoa(s.Processed)
	}, r)
	produce(t, br,
		keyed("orders", "c1", js(order{"o5", 50})),
		keyed("orders", "c3", js(order{"o6", 60})),
	)

	want := map[string]string{
		"o1": "Ada/UK", "o2": "Grace/US", "o4": "Linus/FI", "o5": "Ada/FR",
	}
	wantAll := map[string]string{
		"o1": "Ada", "o2": "Grace", "o3": "unknown:c9", "o4": "Linus", "o5": "Ada", "o6": "unknown:c3",
	}
	read := func(topic string, name func(enriched) string) map[string]string {
		got := map[string]string{}
		for _, rec := range readTopic(t, br, topic, true) {
			var e enriched
			if err := json.Unmarshal(rec.Value, &e); err != nil {
				t.Fatalf("%s: %v", topic, err)
			}
			if _, dup := got[e.Order]; dup {
				t.Errorf("%s: order %s joined twice", topic, e.Order)
			}
			got[e.Order] = name(e)
		}
		return got
	}
	same := func(got, want map[string]string) string {
		var diffs []string
		for k, v := range want {
			if got[k] != v {
				diffs = append(diffs, k+": got "+got[k]+" want "+v)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				diffs = append(diffs, k+": unexpected "+got[k])
			}
		}
		return strings.Join(diffs, "; ")
	}
	waitFor(t, 30*time.Second, func() (bool, string) {
		d := same(read("orders-enriched", func(e enriched) string { return e.Customer + "/" + e.Country }), want)
		d2 := same(read("orders-all", func(e enriched) string { return e.Customer }), wantAll)
		return d == "" && d2 == "", "inner: " + d + " left: " + d2
	}, r)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// A join of topics with different partition counts cannot keep a key's
// records and its table entry in one task: Run refuses to start.
func TestJoinNeedsCoPartitioning(t *testing.T) {
	br := newBroker(t)
	br.CreateTopic("customers", 2, nil)
	br.CreateTopic("orders", 3, nil)
	app, err := stream.New(orderTopology(), stream.Config{ApplicationID: "bad-join", Brokers: []string{br.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	err = app.Run(ctxT(t, 30*time.Second))
	if err == nil || !strings.Contains(err.Error(), "co-partitioned") {
		t.Fatalf("Run: %v, want a co-partitioning error", err)
	}
	if err := app.Run(ctxT(t, time.Second)); err == nil {
		t.Fatal("second Run returned nil")
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
