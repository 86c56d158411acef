package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gregor-streaming/gregor/bench/internal/load"
)

// workload is one named measurement run against a target.
type workload struct {
	// id groups the letters (a, b, c, d, e, f) for --workloads.
	id   string
	name string
	// kind picks the rows printed: produce, consume, e2e, paced.
	kind string
	run  func(ctx context.Context, t load.Target) (*load.Result, error)
	// profile marks the workloads whose broker CPU profile --profile
	// collects.
	profile bool
	// drop are topics deleted after the workload: their last user is
	// done, and kfake keeps every record in memory (about 2 bytes of RSS
	// per payload byte), which longer runs would not fit.
	drop []string
}

func (c *config) workloads() []workload {
	var ws []workload
	prod := func(id, name, topic string, partitions, size, producers int, rate float64, pc load.ProducerConfig, profile bool) {
		w := load.Produce{
			Topic: topic, Partitions: partitions, RecordSize: size, Producers: producers,
			Producer: pc, Rate: rate, Warmup: c.warmup, Duration: c.duration,
		}
		kind := "produce"
		if rate > 0 {
			kind = "paced"
		}
		ws = append(ws, workload{id: id, name: name, kind: kind, profile: profile,
			run: func(ctx context.Context, t load.Target) (*load.Result, error) { return w.Run(ctx, t, name) }})
	}
	cons := func(id, name, topic string, profile bool) {
		w := load.Consume{Topic: topic, MinDuration: c.consumeDuration}
		ws = append(ws, workload{id: id, name: name, kind: "consume", profile: profile,
			run: func(ctx context.Context, t load.Target) (*load.Result, error) { return w.Run(ctx, t, name) }})
	}
	e2e := func(name, topic string, rate float64) {
		pc := c.producer
		pc.Linger = 0
		w := load.E2E{Topic: topic, Partitions: 1, RecordSize: 1024, Rate: rate, Producer: pc,
			Warmup: c.warmup, Duration: c.e2eDuration}
		ws = append(ws, workload{id: "d", name: name, kind: "e2e",
			run: func(ctx context.Context, t load.Target) (*load.Result, error) { return w.Run(ctx, t, name) }})
	}

	prod("a", "a produce 100B 8p", "bench-a", 8, 100, 1, 0, c.producer, true)
	prod("b", "b produce 1KiB 8p", "bench-b", 8, 1024, 1, 0, c.producer, true)
	cons("c", "c consume 100B 8p", "bench-a", true)
	cons("c", "c consume 1KiB 8p", "bench-b", true)
	for _, r := range c.e2eRates {
		e2e(fmt.Sprintf("d e2e 1KiB %s/s 1p", human(r)), fmt.Sprintf("bench-d%.0f", r), r)
	}
	for _, p := range c.scalePartitions {
		prod("e", fmt.Sprintf("e 1KiB %dp @%s/s", p, human(c.scaleRate)), fmt.Sprintf("bench-e%d", p), p, 1024, 1, c.scaleRate, c.producer, false)
	}
	if c.scaleMax && len(c.scalePartitions) > 0 {
		p := c.scalePartitions[len(c.scalePartitions)-1]
		// The topic exists from the paced run when it ran first.
		prod("e", fmt.Sprintf("e 1KiB %dp max", p), fmt.Sprintf("bench-e%d", p), p, 1024, 1, 0, c.producer, true)
		// The same with the sticky partitioner, which clients use for
		// records without a key: batches of many records to a few
		// partitions at a time rather than one record to each.
		if c.producer.Partitioner != "sticky" {
			spc := c.producer
			spc.Partitioner = "sticky"
			prod("e", fmt.Sprintf("e 1KiB %dp max sticky", p), fmt.Sprintf("bench-e%ds", p), p, 1024, 1, 0, spc, false)
		}
	}
	fpc := c.producer
	fpc.MaxBuffered = c.manyBuffered
	prod("f", fmt.Sprintf("f 1KiB 8p %d producers", c.manyProducers), "bench-f", 8, 1024, c.manyProducers, 0, fpc, false)

	var out []workload
	for _, w := range ws {
		if !c.selected(w.id) {
			continue
		}
		switch {
		case w.id == "c" && w.name == "c consume 1KiB 8p":
			w.drop = []string{"bench-a", "bench-b"}
		case w.id == "a" && !c.selected("c"):
			w.drop = []string{"bench-a"}
		case w.id == "b" && !c.selected("c"):
			w.drop = []string{"bench-b"}
		case w.id == "f":
			w.drop = []string{"bench-f"}
		case strings.HasSuffix(w.name, "p max") && c.producer.Partitioner != "sticky":
			// The sticky run's topic comes next: kfake holds topics in
			// memory, and Gregor's open-file limit bounds its partitions.
			w.drop = []string{fmt.Sprintf("bench-e%d", c.scalePartitions[len(c.scalePartitions)-1])}
		case strings.HasSuffix(w.name, "p max sticky"):
			w.drop = []string{fmt.Sprintf("bench-e%ds", c.scalePartitions[len(c.scalePartitions)-1])}
		}
		out = append(out, w)
	}
	return out
}

// selected reports whether workload letter id was asked for; c (consume)
// needs a and b to have produced its topics.
func (c *config) selected(id string) bool {
	for _, s := range strings.Split(c.only, ",") {
		if s = strings.TrimSpace(s); s == id || s == "all" {
			return true
		}
		if (id == "a" || id == "b") && s == "c" {
			return true
		}
	}
	return false
}

func human(r float64) string {
	switch {
	case r >= 1000 && int(r)%1000 == 0:
		return fmt.Sprintf("%dk", int(r)/1000)
	}
	return fmt.Sprintf("%.0f", r)
}

// profileFor fetches, concurrently with the workload, a CPU profile and
// an allocation delta profile of the broker covering the next d:
// PREFIX.cpu.pprof and PREFIX.allocs.pprof.
func profileFor(ctx context.Context, admin, prefix string, d time.Duration) (wait func() error) {
	done := make(chan error, 2)
	go func() { done <- fetchProfile(ctx, admin, "profile", prefix+".cpu.pprof", d) }()
	go func() { done <- fetchProfile(ctx, admin, "allocs", prefix+".allocs.pprof", d) }()
	return func() error { return errors.Join(<-done, <-done) }
}
