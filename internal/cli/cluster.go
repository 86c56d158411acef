package cli

import (
	"flag"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kversion"
)

var clusterCmd = &command{
	name:    "cluster",
	summary: "show the cluster: brokers, controller, version, APIs; elect leaders",
	help:    "Inspect the cluster.",
	sub:     []*command{clusterInfoCmd, clusterElectCmd},
}

type clusterBroker struct {
	NodeID int32   `json:"node_id"`
	Host   string  `json:"host"`
	Port   int32   `json:"port"`
	Rack   *string `json:"rack"`
}

type clusterAPI struct {
	Key  int16  `json:"key"`
	Name string `json:"name"`
	Min  int16  `json:"min_version"`
	Max  int16  `json:"max_version"`
}

type clusterFeature struct {
	Name  string `json:"name"`
	Level int16  `json:"level"`
}

type clusterInfo struct {
	ClusterID  string           `json:"cluster_id"`
	Controller int32            `json:"controller"`
	Brokers    []clusterBroker  `json:"brokers"`
	Version    string           `json:"version_guess"`
	Features   []clusterFeature `json:"features"`
	// APIs are those of the broker that answered ApiVersions first
	// (node order); all brokers of a healthy cluster agree.
	APIs []clusterAPI `json:"apis"`
}

var clusterInfoCmd = &command{
	name:    "info",
	args:    "[flags]",
	summary: "brokers, controller, version and supported APIs",
	help: `Shows the cluster ID, the controller, every broker's address, a guess
of the Kafka version the brokers behave like (from the API versions they
serve), finalized features, and each API with its supported versions.

Examples:
  gregor cluster info
  gregor cluster info -b kafka-1:9092 --json | jq .brokers`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		noAPIs := fs.Bool("no-apis", false, "leave out the API table")
		return func(args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			md, err := adm.BrokerMetadata(ctx)
			if err != nil {
				return r.wrap(err, "Metadata")
			}
			info := clusterInfo{ClusterID: md.Cluster, Controller: md.Controller, Brokers: []clusterBroker{}, APIs: []clusterAPI{}, Features: []clusterFeature{}}
			for _, b := range md.Brokers {
				info.Brokers = append(info.Brokers, clusterBroker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
			}
			vs, err := adm.ApiVersions(ctx)
			if err != nil {
				return r.wrap(err, "ApiVersions")
			}
			for _, v := range vs.Sorted() {
				if v.Err != nil {
					continue
				}
				info.Version = guessVersion(kversion.FromApiVersionsResponse(v.Raw()))
				v.EachKeySorted(func(key, min, max int16) {
					info.APIs = append(info.APIs, clusterAPI{Key: key, Name: apiName(key), Min: min, Max: max})
				})
				if raw := v.Raw(); raw != nil {
					for _, f := range raw.FinalizedFeatures {
						info.Features = append(info.Features, clusterFeature{Name: f.Name, Level: f.MaxVersionLevel})
					}
				}
				break
			}
			if r.json {
				return printJSON(r.env.Stdout, info)
			}
			printClusterInfo(r, info, !*noAPIs)
			return nil
		}
	},
}

func printClusterInfo(r *runner, info clusterInfo, apis bool) {
	w := r.env.Stdout
	kv := newTable(w, "CLUSTER", info.ClusterID)
	kv.row("CONTROLLER", info.Controller)
	kv.row("VERSION", "serves the request versions of Kafka "+strings.TrimPrefix(info.Version, "v"))
	var fs []string
	for _, f := range info.Features {
		fs = append(fs, fmt.Sprintf("%s=%d", f.Name, f.Level))
	}
	kv.row("FEATURES", dash(strings.Join(fs, " ")))
	kv.flush()
	fmt.Fprintln(w)
	t := newTable(w, "BROKER", "HOST", "PORT", "RACK")
	for _, b := range info.Brokers {
		id := fmt.Sprint(b.NodeID)
		if b.NodeID == info.Controller {
			id += " (controller)"
		}
		rack := "-"
		if b.Rack != nil {
			rack = *b.Rack
		}
		t.row(id, b.Host, b.Port, rack)
	}
	t.flush()
	if !apis {
		return
	}
	fmt.Fprintln(w)
	at := newTable(w, "API", "KEY", "VERSIONS")
	for _, a := range info.APIs {
		at.row(a.Name, a.Key, fmt.Sprintf("%d-%d", a.Min, a.Max))
	}
	at.flush()
}

// coreKeys are the APIs whose versions date a broker: every client uses
// them, and every Kafka release raised some of them.
var coreKeys = []int16{0, 1, 2, 3} // Produce, Fetch, ListOffsets, Metadata

// guessVersion names the newest Kafka release whose core request
// versions the broker serves in full. kversion's own guess wants every
// API of a release, which a broker still growing its API set (or one
// that leaves out ZooKeeper-era APIs) never matches.
func guessVersion(have *kversion.Versions) string {
	for _, name := range kversion.VersionStrings() { // newest first
		rel := kversion.FromString(name)
		if rel == nil {
			continue
		}
		ok := true
		for _, k := range coreKeys {
			want, relHas := rel.LookupMaxKeyVersion(k)
			got, has := have.LookupMaxKeyVersion(k)
			if relHas && (!has || got < want) {
				ok = false
			}
		}
		if ok {
			return name
		}
	}
	return "unknown"
}
