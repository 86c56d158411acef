// Command gregor is a Kafka-compatible streaming platform in one binary:
// `gregor serve` runs a broker; the other subcommands talk to any
// Kafka-compatible cluster.
package main

import (
	"fmt"
	"os"
)

// commands maps subcommand names to their entry points. Each returns the
// process exit code.
var commands = map[string]func(args []string) int{
	"serve": serve,
}

const usage = `gregor — a Kafka-compatible streaming platform in one binary

Usage:
  gregor serve [flags]      run a broker (127.0.0.1:9092, data in ./gregor-data)

Run 'gregor COMMAND --help' for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	name := os.Args[1]
	if name == "-h" || name == "--help" || name == "help" {
		fmt.Print(usage)
		return
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "gregor: unknown command %q\n\n%s", name, usage)
		os.Exit(2)
	}
	os.Exit(cmd(os.Args[2:]))
}
