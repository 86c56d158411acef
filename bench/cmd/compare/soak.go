package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gregor-streaming/gregor/bench/internal/load"
	"github.com/gregor-streaming/gregor/bench/internal/report"
)

// soak runs a long produce+consume (the e2e workload over 8 partitions at
// --soak-rate) against each target, sampling broker RSS and heap in use,
// to show whether memory stays bounded. Topics get retention.bytes and
// segment.bytes so a durable broker's disk stays bounded too and
// retention runs during the soak.
func (c *config) soak(ctx context.Context) error {
	out := map[string]any{"started": time.Now(), "command": os.Args, "host": hostInfo()}
	var results []*load.Result
	for _, tn := range c.targets {
		dataDir := filepath.Join(c.workDir, tn+"-soak-data")
		s, err := c.newServer(tn, dataDir)
		if err == nil {
			err = s.start()
		}
		if err == nil {
			err = s.waitReady(ctx, 2*time.Minute)
		}
		if err != nil {
			s.kill()
			return err
		}
		fmt.Printf("== soak %s: %s at %.0f records/s of 1 KiB over 8 partitions, sampling every %s\n", tn, c.soakDuration, c.soakRate, c.soakEvery)
		pc := c.producer
		pc.Linger = 0
		w := load.E2E{
			Topic: "bench-soak", Partitions: 8, RecordSize: 1024, Rate: c.soakRate, Producer: pc,
			Warmup: 10 * time.Second, Duration: c.soakDuration, SampleEvery: c.soakEvery,
			TopicConfigs: map[string]string{
				"retention.bytes": strconv.FormatInt(c.soakRetention, 10),
				"segment.bytes":   strconv.FormatInt(min(c.soakRetention/4, 1<<30), 10),
			},
		}
		r, err := w.Run(ctx, s.target(), fmt.Sprintf("soak %s %.0f/s", c.soakDuration, c.soakRate))
		if r != nil {
			report.Print(os.Stdout, r)
			results = append(results, r)
		}
		s.stop()
		os.RemoveAll(dataDir)
		if err != nil {
			return err
		}
	}
	out["results"] = results
	if c.jsonOut == "" {
		os.MkdirAll(filepath.Join(c.benchSrc, "results"), 0o755)
		c.jsonOut = filepath.Join(c.benchSrc, "results", "soak-"+time.Now().Format("20060102-150405")+".json")
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding results: %w", err)
	}
	fmt.Println("JSON:", c.jsonOut)
	return os.WriteFile(c.jsonOut, append(b, '\n'), 0o644)
}

// soakTargets is the default target list of a soak: kfake keeps every
// record in memory, so its growth says nothing.
func soakTargets(flagged string) []string {
	if flagged == "" {
		return []string{"gregor"}
	}
	return strings.Split(flagged, ",")
}
