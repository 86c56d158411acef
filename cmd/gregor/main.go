// Command gregor is a Kafka-compatible streaming platform in one binary:
// `gregor serve` runs a broker; the other subcommands (internal/cli) talk
// to any Kafka-compatible cluster.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"golang.org/x/term"

	"github.com/gregor-streaming/gregor/internal/cli"
)

const usageHead = `gregor — a Kafka-compatible streaming platform in one binary

Usage:
  gregor serve [flags]            run a broker (127.0.0.1:9092, data in ./gregor-data,
                                  metrics on http://127.0.0.1:9644/metrics)
  gregor COMMAND [ARGS] [flags]   talk to a cluster
  gregor version                  print the version

`

const usageTail = `
Run 'gregor COMMAND --help' for a command's flags and examples.
`

func usage() string {
	return usageHead + cliHelp() + usageTail
}

// cliHelp is the client commands' part of the top-level help.
func cliHelp() string {
	var b []byte
	w := &byteWriter{&b}
	cli.Run(context.Background(), []string{"--help"}, cli.Env{Stdout: w, Stderr: w})
	return string(b)
}

type byteWriter struct{ b *[]byte }

func (w *byteWriter) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage())
		return cli.ExitUsage
	}
	switch name := args[0]; {
	case name == "-h" || name == "--help" || name == "help":
		fmt.Print(usage())
		return 0
	case name == "serve":
		return serve(args[1:])
	case name == "version" || name == "--version":
		fmt.Println("gregor", version())
		return 0
	case cli.Has(name):
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return cli.Run(ctx, args, cli.Env{
			Stdin:     os.Stdin,
			Stdout:    os.Stdout,
			Stderr:    os.Stderr,
			Getenv:    os.Getenv,
			StdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
			StdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
			StderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		})
	default:
		fmt.Fprintf(os.Stderr, "gregor: unknown command %q\n\n%s", name, usage())
		return cli.ExitUsage
	}
}

// version is the module version and VCS revision the binary was built
// from, as far as the build recorded them.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v + " " + info.GoVersion
}
