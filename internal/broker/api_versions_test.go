package broker_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// TestApiVersionsFeatureRangesFromZero: a supported feature range that
// starts at 0 (transaction.version) is listed only to v4+ requests, as
// Kafka does since KAFKA-17492. Java clients before 3.9 send v3 and
// reject such a range while parsing the response ("Expected minValue >=
// 1"), failing every connection.
func TestApiVersionsFeatureRangesFromZero(t *testing.T) {
	b := ktest.NewBroker(t)
	for _, v := range []int16{3, 4, 5} {
		r := kmsg.NewPtrApiVersionsRequest()
		r.Version, r.ClientSoftwareName, r.ClientSoftwareVersion = v, "apache-kafka-java", "3.7.1"
		resp := send[*kmsg.ApiVersionsResponse](t, b, r)
		errCode(t, "api versions", resp.ErrorCode, nil)
		var txnVersion bool
		for _, f := range resp.SupportedFeatures {
			if f.MinVersion < 1 && v < 4 {
				t.Errorf("v%d: supported feature %s from %d", v, f.Name, f.MinVersion)
			}
			txnVersion = txnVersion || f.Name == "transaction.version"
		}
		if txnVersion != (v >= 4) {
			t.Errorf("v%d: transaction.version supported listed %v", v, txnVersion)
		}
		if len(resp.FinalizedFeatures) == 0 {
			t.Errorf("v%d: no finalized features", v)
		}
	}
}
