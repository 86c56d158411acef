package cli

import (
	"strconv"
	"strings"
	"testing"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

func TestClusterInfo(t *testing.T) {
	kb := ktest.NewBroker(t)
	a := kb.Addr
	golden(t, "cluster_info_no_apis", ok(t, a, "", "cluster", "info", "--no-apis"))
	var info clusterInfo
	decode(t, a, "", &info, "cluster", "info")
	if info.ClusterID != kb.B.ClusterID() || info.Controller != kb.B.NodeID() || len(info.Brokers) != 1 ||
		info.Brokers[0].Host+":"+strconv.Itoa(int(info.Brokers[0].Port)) != a {
		t.Errorf("cluster info --json: %+v", info)
	}
	found := map[string]bool{}
	for _, api := range info.APIs {
		found[api.Name] = api.Max >= api.Min
	}
	for _, want := range []string{"Produce", "Fetch", "Metadata", "ApiVersions", "CreateTopics"} {
		if !found[want] {
			t.Errorf("cluster info lists no %s", want)
		}
	}
	if !strings.HasPrefix(info.Version, "v") {
		t.Errorf("version guess %q", info.Version)
	}
	out := ok(t, a, "", "cluster", "info")
	if !strings.Contains(out, "\nProduce ") || !strings.Contains(out, "(controller)") {
		t.Errorf("cluster info table:\n%s", out)
	}
}
