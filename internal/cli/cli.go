package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultBrokers is where commands connect without -b or GREGOR_BROKERS.
const DefaultBrokers = "127.0.0.1:9092"

// Env is the process environment a command runs in; tests fake it.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads environment variables (GREGOR_BROKERS, the TLS and
	// SASL settings, GREGOR_USER_PASSWORD).
	Getenv func(string) string
	// StdinTTY and StderrTTY tell whether those are terminals: a live
	// rate is drawn on a terminal stderr when data does not come from
	// or go to one.
	StdinTTY, StdoutTTY, StderrTTY bool
	// ClientOpts are added to every client (tests: short timeouts).
	ClientOpts []kgo.Opt
}

// command is a node of the command tree: a group (sub set) or a leaf
// (run set).
type command struct {
	name    string
	args    string // positional arguments, for the usage line
	summary string
	// help is the text after the usage line: details and examples.
	help string
	sub  []*command
	// setup declares the command's own flags and returns the function
	// that runs it with the positional arguments.
	setup func(r *runner, fs *flag.FlagSet) func(args []string) error
}

// root is the command tree; main dispatches "serve" itself.
var root = &command{
	name: "gregor",
	sub: []*command{
		topicCmd,
		produceCmd,
		consumeCmd,
		groupCmd,
		clusterCmd,
		userCmd,
		aclCmd,
		quotaCmd,
	},
}

// Commands returns the top-level command names and summaries, for the
// binary's help.
func Commands() [][2]string {
	var out [][2]string
	for _, c := range root.sub {
		out = append(out, [2]string{c.name, c.summary})
	}
	return out
}

// Has reports whether name is a CLI command.
func Has(name string) bool {
	for _, c := range root.sub {
		if c.name == name {
			return true
		}
	}
	return false
}

// runner holds a command's global options and environment.
type runner struct {
	env     Env
	ctx     context.Context
	path    string // "topic create", for messages
	brokers string
	json    bool
	timeout time.Duration
	sec     security
}

// Run runs the command in args (without the program name), prints any
// error as one line on stderr, and returns the exit status.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	cmd, path, rest := resolve(root, args)
	if cmd.setup == nil {
		// A group: print its help. Asked for (-h) or bare is fine;
		// an unknown subcommand is a usage error.
		if len(rest) > 0 && !isHelp(rest[0]) {
			fmt.Fprintf(env.Stderr, "gregor %s: unknown command %q\n\n", path, rest[0])
			groupHelp(env.Stderr, cmd, path)
			return ExitUsage
		}
		if len(rest) == 0 {
			groupHelp(env.Stderr, cmd, path)
			return ExitUsage
		}
		groupHelp(env.Stdout, cmd, path)
		return ExitOK
	}
	r := &runner{env: env, ctx: ctx, path: path}
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	run := cmd.setup(r, fs)
	r.globalFlags(fs)
	// flag prints the usage itself on -h and on mistakes, to its
	// output; printed here instead, help asked for goes to stdout once.
	fs.Usage = func() {}
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			leafHelp(env.Stdout, cmd, path, fs)
			return ExitOK
		}
		// flag printed the problem; the usage follows it.
		leafHelp(env.Stderr, cmd, path, fs)
		return ExitUsage
	}
	if r.brokers == "" {
		r.brokers = DefaultBrokers
	}
	err = r.sec.prepare(fs, env.Getenv)
	if err == nil {
		err = run(pos)
	}
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	fmt.Fprintf(env.Stderr, "gregor %s: %s\n", path, message(err))
	if code == ExitUsage {
		fmt.Fprintf(env.Stderr, "Run 'gregor %s --help' for usage.\n", path)
	}
	return code
}

func isHelp(s string) bool { return s == "-h" || s == "--help" || s == "help" || s == "-help" }

// resolve walks args down the command tree.
func resolve(c *command, args []string) (*command, string, []string) {
	var path []string
	for len(args) > 0 && c.setup == nil {
		var next *command
		for _, s := range c.sub {
			if s.name == args[0] {
				next = s
			}
		}
		if next == nil {
			break
		}
		c = next
		path = append(path, args[0])
		args = args[1:]
	}
	return c, strings.Join(path, " "), args
}

// globalFlags are accepted by every command.
func (r *runner) globalFlags(fs *flag.FlagSet) {
	def := r.env.Getenv("GREGOR_BROKERS")
	fs.StringVar(&r.brokers, "brokers", def, "comma-separated `HOST:PORT` list of seed brokers (default $GREGOR_BROKERS, else "+DefaultBrokers+")")
	fs.StringVar(&r.brokers, "b", def, "short for --brokers")
	fs.BoolVar(&r.json, "json", false, "print JSON instead of tables")
	fs.DurationVar(&r.timeout, "timeout", 15*time.Second, "give up on the cluster after this long")
	r.sec.flags(fs)
}

// partitionOpenAllowance is how much longer than --timeout's default a
// command waits per partition it asks the broker to create: the broker
// answers once the partitions' files exist, which took 0.2-3 ms each on
// the development VM (10,000 partitions: 2-29 s).
const partitionOpenAllowance = 3 * time.Millisecond

// allowForPartitions lengthens the default timeout for a command that
// creates n partitions; a --timeout the user gave is kept as it is.
func (r *runner) allowForPartitions(fs *flag.FlagSet, n int) {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "timeout" })
	if !set && n > 0 {
		r.timeout += time.Duration(n) * partitionOpenAllowance
	}
}

// parseInterspersed parses flags anywhere among the arguments, as users
// of rpk and kcat expect ("consume events -n 3"); after "--" everything
// is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	return append(pos, tail...), nil
}

// seeds splits the broker list.
func (r *runner) seeds() []string {
	var out []string
	for _, s := range strings.Split(r.brokers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// client connects to the cluster. The first request fails fast when no
// seed broker answers, so commands can say "cannot reach" at once rather
// than retrying for their whole timeout.
func (r *runner) client(extra ...kgo.Opt) (*kgo.Client, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(r.seeds()...),
		kgo.ClientID("gregor-cli"),
		kgo.DialTimeout(min(r.timeout, 5*time.Second)),
		kgo.RequestTimeoutOverhead(r.timeout),
		kgo.RetryTimeout(r.timeout),
	}
	opts = append(opts, r.sec.opts...)
	opts = append(opts, r.env.ClientOpts...)
	opts = append(opts, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, usagef("%v", err)
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.timeout)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		if isConnError(err) || errors.Is(err, context.DeadlineExceeded) {
			return nil, &unreachableError{brokers: r.brokers, err: err}
		}
		return nil, r.sec.connectFailed(err)
	}
	return cl, nil
}

// admin returns a kadm client and a context bounded by --timeout; call
// the returned func when done.
func (r *runner) admin() (*kadm.Client, context.Context, func(), error) {
	cl, err := r.client()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.timeout)
	adm := kadm.NewClient(cl)
	return adm, ctx, func() { cancel(); cl.Close() }, nil
}

// wrap adds context to a request error, and turns a dial failure after
// the ping into "unreachable".
func (r *runner) wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	if isConnError(err) {
		return &unreachableError{brokers: r.brokers, err: err}
	}
	if isUnsupported(err) {
		return &unsupportedError{api: what}
	}
	return err
}

// groupHelp prints a command group's help.
func groupHelp(w io.Writer, c *command, path string) {
	if path == "" {
		fmt.Fprint(w, rootHelp)
		return
	}
	fmt.Fprintf(w, "Usage: gregor %s COMMAND [flags]\n\n%s\n", path, c.help)
	fmt.Fprintln(w, "\nCommands:")
	for _, s := range c.sub {
		fmt.Fprintf(w, "  %-16s %s\n", s.name, s.summary)
	}
	fmt.Fprintf(w, "\nRun 'gregor %s COMMAND --help' for a command's flags and examples.\n", path)
}

// globalFlagNames are the flags globalFlags declares, which leafHelp
// lists apart from a command's own.
var globalFlagNames = append([]string{"brokers", "json", "timeout"}, securityFlags...)

// leafHelp prints a command's help: usage, text, flags (a short alias
// on the line of its long flag).
func leafHelp(w io.Writer, c *command, path string, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: gregor %s %s\n\n%s\n\n", path, c.args, strings.TrimSpace(c.help))
	shorts := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		if long, ok := strings.CutPrefix(f.Usage, "short for --"); ok {
			shorts[long] = f.Name
		}
	})
	var own, global strings.Builder
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Usage, "short for --") {
			return
		}
		b := &own
		if slices.Contains(globalFlagNames, f.Name) {
			b = &global
		}
		name, usage := flag.UnquoteUsage(f)
		line := "      --" + f.Name
		if s, ok := shorts[f.Name]; ok {
			line = "  -" + s + ", --" + f.Name
		}
		if name != "" {
			line += " " + name
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "-1" && !strings.Contains(usage, "default") {
			usage += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(b, "%-30s %s\n", line, usage)
	})
	if own.Len() > 0 {
		fmt.Fprintf(w, "Flags:\n%s\n", own.String())
	}
	fmt.Fprintf(w, "Global flags:\n%s", global.String())
}

// rootHelp is printed by "gregor --help"; main prepends serve.
const rootHelp = `Client commands (talk to any Kafka-compatible cluster):
  topic     create, list, describe, delete, alter-config, add-partitions
  produce   write records from stdin or files to a topic
  consume   read records from topics, alone or in a consumer group
  group     list, describe (members, lag), delete, reset-offsets
  cluster   info: brokers, controller, version, supported APIs
  user      create, list, delete SCRAM users (SASL)
  acl       create, list, delete ACLs (authorization)
  quota     set, list, delete client quotas (byte rates)

Every client command takes:
  -b, --brokers HOST:PORT,...   seed brokers (default $GREGOR_BROKERS, else 127.0.0.1:9092)
  --json                        JSON output for scripts
  --timeout DURATION            give up on the cluster after this long (default 15s)
  --tls                         connect with TLS ($GREGOR_TLS=1)
  --tls-ca FILE                 trust these PEM CA certificates ($GREGOR_TLS_CA)
  --tls-cert FILE               PEM client key and certificate ($GREGOR_TLS_CERT)
  --tls-server-name NAME        verify certificates for NAME, not the broker's host
  --sasl-mechanism NAME         PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 ($GREGOR_SASL_MECHANISM)
  --sasl-user NAME              SASL user ($GREGOR_SASL_USER)
  --sasl-password PASSWORD      SASL password (better: $GREGOR_SASL_PASSWORD)

Exit status: 0 ok, 1 the operation failed, 2 usage error,
3 cluster unreachable, 4 authentication or authorization failed.

Examples:
  gregor topic create events -p 3
  seq 10 | gregor produce events
  gregor consume events -o start -e
  gregor consume events -g billing -n 100 --json
  gregor group describe billing
  gregor cluster info -b kafka-1:9092,kafka-2:9092
  GREGOR_SASL_PASSWORD=secret gregor topic list -b kafka:9093 --tls-ca ca.pem \
      --sasl-mechanism SCRAM-SHA-256 --sasl-user alice
`
