// Command compare runs the issue-7 workloads against Gregor and against
// franz-go's kfake back to back in one invocation, repeats each several
// times, and prints medians with Gregor/kfake ratios, plus a JSON file.
//
//	cd bench && go run ./cmd/compare                 # ~12 minutes
//	go run ./cmd/compare --reps 5 --duration 20s     # longer, steadier
//	go run ./cmd/compare --workloads a,c --reps 1    # a subset
//
// Each repetition starts a fresh broker of each kind (Gregor on an empty
// temporary data directory, durable defaults; kfake in its own process),
// runs every selected workload, and stops it. The order of the two
// targets alternates between repetitions so slow drift of the shared
// machine falls on both. After the repetitions a Gregor-only experiment
// measures restart time with many partitions holding data, and both
// brokers' heap per idle partition.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gregor-streaming/gregor/bench/internal/load"
	"github.com/gregor-streaming/gregor/bench/internal/report"
)

type config struct {
	reps            int
	warmup          time.Duration
	duration        time.Duration
	consumeDuration time.Duration
	e2eDuration     time.Duration
	e2eRates        []float64
	scalePartitions []int
	scaleRate       float64
	scaleMax        bool
	manyProducers   int
	manyBuffered    int
	only            string
	targets         []string
	producer        load.ProducerConfig

	gregorSrc, gregorBin, benchSrc string
	gregorRev                      string
	// gregorCommit is the commit built (rev-parse of gregorRev or HEAD).
	gregorCommit string
	gregorArgs   []string
	workDir      string
	keep         bool
	jsonOut      string
	profileDir   string

	restart           bool
	restartPartitions int
	restartRecords    int
	restartReps       int
	restartCold       bool

	soakDuration  time.Duration
	soakRate      float64
	soakEvery     time.Duration
	soakRetention int64
}

func main() {
	c, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func parseFlags() (*config, error) {
	c := &config{producer: load.DefaultProducer()}
	fs := flag.CommandLine
	fs.IntVar(&c.reps, "reps", 3, "repetitions of every workload per target (medians are reported)")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured warm-up before each measured interval")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "measured interval of each produce workload")
	fs.DurationVar(&c.consumeDuration, "consume-duration", 3*time.Second, "minimum measured interval of each consume workload")
	fs.DurationVar(&c.e2eDuration, "e2e-duration", 8*time.Second, "measured interval of each e2e latency workload")
	e2eRates := fs.String("e2e-rates", "1000,10000", "records/s of the e2e workloads (d)")
	scaleParts := fs.String("scale-partitions", "1,100,1000,10000", "partition counts of the scale workloads (e)")
	fs.Float64Var(&c.scaleRate, "scale-rate", 10000, "total records/s of the scale workloads (e), 1 KiB records round robin")
	fs.BoolVar(&c.scaleMax, "scale-max", true, "also produce as fast as possible to the largest scale topic (the 0.7x-of-8-partitions target), once round robin and once with the sticky partitioner")
	fs.IntVar(&c.manyProducers, "producers", 50, "concurrent producer clients of workload f")
	fs.IntVar(&c.manyBuffered, "producers-buffered", 1000, "max buffered records per client in workload f")
	fs.StringVar(&c.only, "workloads", "a,b,c,d,e,f", "workloads to run: letters from a-f, or all (c implies a and b)")
	targets := fs.String("targets", "", "targets, in the first repetition's order (default gregor,kfake; a soak defaults to gregor)")
	fs.IntVar(&c.producer.Acks, "acks", c.producer.Acks, "producer acks: -1 (all), 0, 1")
	fs.DurationVar(&c.producer.Linger, "linger", c.producer.Linger, "producer linger of the throughput workloads (e2e always uses 0)")
	fs.IntVar(&c.producer.BatchMaxBytes, "batch-max-bytes", c.producer.BatchMaxBytes, "max bytes of one record batch")
	fs.StringVar(&c.producer.Compression, "compression", c.producer.Compression, "none, gzip, snappy, lz4, zstd")
	fs.BoolVar(&c.producer.Idempotent, "idempotent", c.producer.Idempotent, "idempotent producers")
	fs.IntVar(&c.producer.MaxBuffered, "max-buffered", c.producer.MaxBuffered, "max records buffered per producer client")
	fs.StringVar(&c.producer.Partitioner, "partitioner", c.producer.Partitioner, "rr (round robin) or sticky")
	fs.StringVar(&c.gregorSrc, "gregor-src", "", "Gregor source tree to build (default: the parent of the bench module)")
	fs.StringVar(&c.gregorBin, "gregor-bin", "", "use this gregor binary instead of building one")
	fs.StringVar(&c.gregorRev, "gregor-rev", "", "build Gregor at this git revision of --gregor-src (e.g. HEAD: the last commit, ignoring uncommitted edits) instead of the work tree")
	gargs := fs.String("gregor-args", "", "extra arguments for gregor serve, space separated (e.g. \"--set log.flush.interval.messages=1\")")
	fs.StringVar(&c.workDir, "work-dir", "", "directory for binaries, data and logs (default: a new temporary directory)")
	fs.BoolVar(&c.keep, "keep", false, "keep the work directory (data and broker logs) afterwards")
	fs.StringVar(&c.jsonOut, "json", "", "write all results as JSON here (default: results/compare-TIME.json)")
	fs.StringVar(&c.profileDir, "profile", "", "write broker CPU and allocation profiles of workloads a, b, c and the largest e max here (pprof format; both brokers serve /debug/pprof)")
	fs.BoolVar(&c.restart, "restart", true, "measure Gregor restart time and heap per idle partition")
	fs.IntVar(&c.restartPartitions, "restart-partitions", 10000, "partitions of the restart experiment")
	fs.IntVar(&c.restartRecords, "restart-records", 100000, "1 KiB records produced (round robin) before the restarts")
	fs.IntVar(&c.restartReps, "restart-reps", 3, "restarts timed (median reported)")
	fs.BoolVar(&c.restartCold, "restart-cold", true, "also time a restart with the page cache dropped first, and one after kill -9 (needs root; skipped otherwise)")
	fs.DurationVar(&c.soakDuration, "soak", 0, "instead of the comparison, run a memory soak this long (e.g. 10m): produce+consume at --soak-rate, RSS and heap sampled")
	fs.Float64Var(&c.soakRate, "soak-rate", 10000, "records/s of 1 KiB during --soak")
	fs.DurationVar(&c.soakEvery, "soak-sample", 10*time.Second, "memory sample interval during --soak")
	fs.Int64Var(&c.soakRetention, "soak-retention-bytes", 256<<20, "retention.bytes per partition of the soak topic")
	fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if c.e2eRates, err = floats(*e2eRates); err != nil {
		return nil, err
	}
	fl, err := floats(*scaleParts)
	if err != nil {
		return nil, err
	}
	for _, f := range fl {
		c.scalePartitions = append(c.scalePartitions, int(f))
	}
	switch {
	case c.soakDuration > 0:
		c.targets = soakTargets(*targets)
	case *targets == "":
		c.targets = []string{"gregor", "kfake"}
	default:
		c.targets = strings.Split(*targets, ",")
	}
	for _, t := range c.targets {
		if t != "gregor" && t != "kfake" {
			return nil, fmt.Errorf("unknown target %q", t)
		}
	}
	c.gregorArgs = strings.Fields(*gargs)
	if c.reps < 1 {
		return nil, fmt.Errorf("--reps %d", c.reps)
	}
	return c, nil
}

func floats(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// output is the JSON document.
type output struct {
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished"`
	Command  []string          `json:"command"`
	Host     map[string]any    `json:"host"`
	Config   map[string]any    `json:"config"`
	Results  []*load.Result    `json:"results"`
	Failures []failure         `json:"failures,omitempty"`
	Medians  []median          `json:"medians"`
	Restart  *restartResult    `json:"restart,omitempty"`
	Targets  []targetCheck     `json:"targets"`
	Profiles map[string]string `json:"profiles,omitempty"`
}

type failure struct {
	Workload, Target string
	Rep              int
	Error            string
}

func run(ctx context.Context, c *config) error {
	out := &output{Started: time.Now(), Command: os.Args, Profiles: map[string]string{}}
	if err := c.locate(); err != nil {
		return err
	}
	if c.workDir == "" {
		d, err := os.MkdirTemp("", "gregor-compare-")
		if err != nil {
			return err
		}
		c.workDir = d
	}
	if !c.keep {
		defer os.RemoveAll(c.workDir)
	} else {
		fmt.Println("work directory (kept):", c.workDir)
	}
	if err := c.build(ctx); err != nil {
		return err
	}
	if c.soakDuration > 0 {
		return c.soak(ctx)
	}
	out.Host = hostInfo()
	out.Config = map[string]any{
		"reps": c.reps, "warmup": c.warmup.String(), "duration": c.duration.String(),
		"consume_duration": c.consumeDuration.String(), "e2e_duration": c.e2eDuration.String(),
		"e2e_rates": c.e2eRates, "scale_partitions": c.scalePartitions, "scale_rate": c.scaleRate,
		"producers": c.manyProducers, "producer": c.producer.String(), "workloads": c.only,
		"gregor_args": c.gregorArgs, "gregor_commit": c.gregorCommit,
	}
	fmt.Printf("host: %v\ngregor: %s\nproducer: %s\n\n", out.Host, c.gregorCommit, c.producer)

	ws := c.workloads()
	for rep := 1; rep <= c.reps && ctx.Err() == nil; rep++ {
		order := slices.Clone(c.targets)
		if rep%2 == 0 {
			slices.Reverse(order)
		}
		for _, tn := range order {
			res, fails := c.runTarget(ctx, tn, rep, ws)
			out.Results = append(out.Results, res...)
			out.Failures = append(out.Failures, fails...)
			for k, v := range c.profiles(tn, rep) {
				out.Profiles[k] = v
			}
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if c.restart && slices.Contains(c.targets, "gregor") {
		rr, err := c.restartExperiment(ctx)
		if err != nil {
			fmt.Println("restart experiment failed:", err)
		}
		out.Restart = rr
	}

	out.Medians = medians(out.Results)
	out.Targets = checkTargets(out.Medians, out.Restart)
	out.Finished = time.Now()

	fmt.Println()
	fmt.Printf("== medians of %d repetitions (%s)\n", c.reps, strings.Join(os.Args, " "))
	printTable(os.Stdout, ws, out.Medians)
	if out.Restart != nil {
		printRestart(os.Stdout, out.Restart)
	}
	printTargets(os.Stdout, out.Targets)
	for _, f := range out.Failures {
		fmt.Printf("FAILED %s on %s (rep %d): %s\n", f.Workload, f.Target, f.Rep, f.Error)
	}
	if c.jsonOut == "" {
		os.MkdirAll(filepath.Join(c.benchSrc, "results"), 0o755)
		c.jsonOut = filepath.Join(c.benchSrc, "results", "compare-"+out.Started.Format("20060102-150405")+".json")
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding results: %w", err)
	}
	if err := os.WriteFile(c.jsonOut, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Println("\nJSON:", c.jsonOut, " elapsed:", out.Finished.Sub(out.Started).Round(time.Second))
	return nil
}

// locate finds the bench module and the Gregor tree from the working
// directory unless flags name them.
func (c *config) locate() error {
	if c.benchSrc == "" {
		dir, _ := os.Getwd()
		for d := dir; ; d = filepath.Dir(d) {
			if modIs(filepath.Join(d, "go.mod"), "github.com/gregor-streaming/gregor/bench") {
				c.benchSrc = d
				break
			}
			if modIs(filepath.Join(d, "bench", "go.mod"), "github.com/gregor-streaming/gregor/bench") {
				c.benchSrc = filepath.Join(d, "bench")
				break
			}
			if filepath.Dir(d) == d {
				return fmt.Errorf("run compare from the bench module or the Gregor tree (no bench/go.mod above %s)", dir)
			}
		}
	}
	if c.gregorSrc == "" && c.gregorBin == "" {
		c.gregorSrc = filepath.Dir(c.benchSrc)
		if !modIs(filepath.Join(c.gregorSrc, "go.mod"), "github.com/gregor-streaming/gregor") {
			return fmt.Errorf("%s is not the Gregor module; pass --gregor-src or --gregor-bin", c.gregorSrc)
		}
	}
	return nil
}

func modIs(path, module string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.TrimSpace(m) == module
		}
	}
	return false
}

func (c *config) build(ctx context.Context) error {
	if slices.Contains(c.targets, "gregor") && c.gregorBin == "" {
		c.gregorBin = filepath.Join(c.workDir, "gregor")
		src := c.gregorSrc
		if c.gregorRev != "" {
			src = filepath.Join(c.workDir, "gregor-src")
			if err := gitExport(ctx, c.gregorSrc, c.gregorRev, src); err != nil {
				return err
			}
		}
		if c.gregorRev != "" {
			c.gregorCommit = gitRev(c.gregorSrc, c.gregorRev)
		} else if h := gitRev(c.gregorSrc, "HEAD"); h != "" {
			c.gregorCommit = h + " + work tree"
		}
		fmt.Printf("building gregor from %s at %s\n", c.gregorSrc, c.gregorCommit)
		if err := goBuild(ctx, src, c.gregorBin, "./cmd/gregor"); err != nil {
			return err
		}
		if c.gregorRev != "" {
			os.RemoveAll(src)
		}
	}
	if slices.Contains(c.targets, "kfake") {
		fmt.Printf("building kfakeserver from %s\n", c.benchSrc)
		if err := goBuild(ctx, c.benchSrc, filepath.Join(c.workDir, "kfakeserver"), "./cmd/kfakeserver"); err != nil {
			return err
		}
	}
	return nil
}

// gitExport writes the tree of rev in repo to dir.
func gitExport(ctx context.Context, repo, rev, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "sh", repo, rev, dir)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("git archive %s of %s: %w", rev, repo, err)
	}
	return nil
}

func gitRev(repo, rev string) string {
	out, err := exec.Command("git", "-C", repo, "rev-parse", "--short", rev).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func goBuild(ctx context.Context, dir, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s in %s: %w", pkg, dir, err)
	}
	return nil
}

func hostInfo() map[string]any {
	h := map[string]any{"ncpu": runtime.NumCPU(), "go": runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h["kernel"] = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				h["cpu"] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return h
}

// runTarget starts a fresh broker of kind tn, runs ws against it, and
// stops it.
func (c *config) runTarget(ctx context.Context, tn string, rep int, ws []workload) ([]*load.Result, []failure) {
	var (
		res   []*load.Result
		fails []failure
	)
	fail := func(w string, err error) {
		fmt.Printf("  FAILED %s: %v\n", w, err)
		fails = append(fails, failure{Workload: w, Target: tn, Rep: rep, Error: err.Error()})
	}
	dataDir := filepath.Join(c.workDir, fmt.Sprintf("%s-data-%d", tn, rep))
	s, err := c.newServer(tn, dataDir)
	if err == nil {
		err = s.start()
	}
	if err == nil {
		err = s.waitReady(ctx, 2*time.Minute)
	}
	if err != nil {
		s.kill()
		fail("start", err)
		return nil, fails
	}
	defer os.RemoveAll(dataDir)
	repStart := time.Now()
	fmt.Printf("== rep %d/%d: %s (pid %d, %s) at %s\n", rep, c.reps, tn, s.cmd.Process.Pid, s.addr, repStart.Format("15:04:05"))
	t := s.target()
	for _, w := range ws {
		if ctx.Err() != nil {
			break
		}
		var waitProf func() error
		if c.profileDir != "" && w.profile {
			d := c.warmup + c.duration
			if w.kind == "consume" {
				d = c.consumeDuration
			}
			p := filepath.Join(c.profileDir, fmt.Sprintf("%s-%s-rep%d", tn, slug(w.name), rep))
			waitProf = profileFor(ctx, s.admin, p, d)
		}
		r, err := w.run(ctx, t)
		if waitProf != nil {
			if perr := waitProf(); perr != nil {
				fmt.Printf("  profile of %s: %v\n", w.name, perr)
			}
		}
		if r != nil {
			r.Rep = rep
			res = append(res, r)
			report.Print(os.Stdout, r)
		}
		if err != nil {
			fail(w.name, err)
		}
		if len(w.drop) > 0 {
			if err := load.DeleteTopics(ctx, s.addr, w.drop...); err != nil {
				fmt.Printf("  deleting %v: %v\n", w.drop, err)
			}
		}
	}
	// The data directory is thrown away, so there is nothing to shut
	// down cleanly; an orderly stop of Gregor with 10,000 partitions takes
	// tens of seconds (the restart experiment measures it).
	s.kill()
	fmt.Printf("  %s rep %d done in %s\n", tn, rep, time.Since(repStart).Round(time.Second))
	return res, fails
}

func (c *config) newServer(tn, dataDir string) (*server, error) {
	logPath := filepath.Join(c.workDir, tn+".log")
	if tn == "gregor" {
		return newGregor(c.gregorBin, dataDir, logPath, c.gregorArgs)
	}
	return newKfake(filepath.Join(c.workDir, "kfakeserver"), logPath)
}

func (c *config) profiles(tn string, rep int) map[string]string {
	if c.profileDir == "" {
		return nil
	}
	m := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(c.profileDir, fmt.Sprintf("%s-*-rep%d.*.pprof", tn, rep)))
	for _, f := range files {
		m[filepath.Base(f)] = f
	}
	return m
}

func slug(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, s)
}

func fetchProfile(ctx context.Context, admin, kind, path string, d time.Duration) error {
	sec := max(1, int(math.Round(d.Seconds())))
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/debug/pprof/%s?seconds=%d", admin, kind, sec), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s", resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}
