package cli

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"golang.org/x/term"
)

var userCmd = &command{
	name:    "user",
	summary: "create, list and delete SCRAM users (SASL)",
	help: `Manage the SCRAM credentials SASL listeners authenticate users with
(KIP-554: DescribeUserScramCredentials, AlterUserScramCredentials). A
user may have one credential per mechanism, SCRAM-SHA-256 and
SCRAM-SHA-512; Gregor's SASL PLAIN checks the password against either.`,
	sub: []*command{userCreateCmd, userListCmd, userDeleteCmd},
}

// SCRAM iteration bounds, as Kafka's (and kadm's) are.
const (
	minIterations = 4096
	maxIterations = 16384
)

// scramMechanism parses a --mechanism value, case-insensitively.
func scramMechanism(s string) (kadm.ScramMechanism, error) {
	switch strings.ToUpper(s) {
	case "SCRAM-SHA-256":
		return kadm.ScramSha256, nil
	case "SCRAM-SHA-512":
		return kadm.ScramSha512, nil
	}
	return 0, usagef("--mechanism %q: want SCRAM-SHA-256 or SCRAM-SHA-512", s)
}

// uniq drops repeated names, keeping the first of each: a user may be
// named once per request.
func uniq(names []string) []string {
	var out []string
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// ---- create

var userCreateCmd = &command{
	name:    "create",
	args:    "USER... [flags]",
	summary: "create users or change their passwords",
	help: `Creates SCRAM users, or changes the password of those that exist: the
credential for the mechanism is set either way (STATUS says which). All
users named get the same password, from --password, else
$GREGOR_USER_PASSWORD, else the first line of stdin (asked for without
echo on a terminal).

Examples:
  echo alice-secret | gregor user create alice
  GREGOR_USER_PASSWORD=s3cret gregor user create bob --mechanism SCRAM-SHA-512
  gregor user create carol --iterations 8192 < password.txt`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		mechFlag := fs.String("mechanism", "SCRAM-SHA-256", "SCRAM mechanism `NAME`: SCRAM-SHA-256 or SCRAM-SHA-512")
		iterations := fs.Int("iterations", minIterations, fmt.Sprintf("SCRAM iteration count `N`, %d to %d", minIterations, maxIterations))
		password := fs.String("password", "", "the users' `PASSWORD` (prefer $GREGOR_USER_PASSWORD or stdin: others can see command lines)")
		return func(args []string) error {
			users := uniq(args)
			if len(users) == 0 {
				return usagef("name at least one user")
			}
			if slices.Contains(users, "") {
				return usagef("a user name cannot be empty")
			}
			mech, err := scramMechanism(*mechFlag)
			if err != nil {
				return err
			}
			if *iterations < minIterations || *iterations > maxIterations {
				return usagef("--iterations %d: want %d to %d", *iterations, minIterations, maxIterations)
			}
			pass, err := r.newPassword(*password, users)
			if err != nil {
				return err
			}
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			// Which users have the credential already, to tell
			// "created" from "changed"; "set" when that is unknown.
			had := map[string]string{}
			if described, err := adm.DescribeUserSCRAMs(ctx, users...); err == nil {
				for _, u := range users {
					d, ok := described[u]
					switch {
					case ok && d.Err == nil && slices.ContainsFunc(d.CredInfos, func(c kadm.CredInfo) bool { return c.Mechanism == mech }):
						had[u] = "changed"
					case ok && (d.Err == nil || errors.Is(d.Err, kerr.ResourceNotFound)):
						had[u] = "created"
					}
				}
			}
			var upserts []kadm.UpsertSCRAM
			for _, u := range users {
				upserts = append(upserts, kadm.UpsertSCRAM{User: u, Mechanism: mech, Iterations: int32(*iterations), Password: pass})
			}
			resps, err := adm.AlterUserSCRAMs(ctx, nil, upserts)
			if err != nil {
				return r.wrap(err, "AlterUserScramCredentials")
			}
			results := newItemResults("user", "users")
			for _, u := range users {
				resp, ok := resps[u]
				if !ok {
					resp.Err = errors.New("no answer from the cluster")
				}
				status := had[u]
				if status == "" {
					status = "set"
				}
				results.add(u, status, resp.Err, resp.ErrMessage)
			}
			return results.print(r)
		}
	},
}

// newPassword is the password for user create: the flag's, else
// $GREGOR_USER_PASSWORD, else a line of stdin.
func (r *runner) newPassword(flagged string, users []string) (string, error) {
	if flagged != "" {
		return flagged, nil
	}
	if p := r.env.Getenv("GREGOR_USER_PASSWORD"); p != "" {
		return p, nil
	}
	var line string
	if f, ok := r.env.Stdin.(*os.File); ok && r.env.StdinTTY {
		fmt.Fprintf(r.env.Stderr, "Password for %s: ", strings.Join(users, ", "))
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(r.env.Stderr)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		line = string(b)
	} else {
		s, err := bufio.NewReader(r.env.Stdin).ReadString('\n')
		if err != nil && err != io.EOF {
			return "", fmt.Errorf("reading the password from stdin: %w", err)
		}
		line = strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
	}
	if line == "" {
		return "", usagef("no password: give --password, $GREGOR_USER_PASSWORD or a line on stdin")
	}
	return line, nil
}

// ---- list

// userCredential is one row of user list: a user's credential for one
// mechanism.
type userCredential struct {
	User       string `json:"user"`
	Mechanism  string `json:"mechanism"`
	Iterations int32  `json:"iterations"`
}

var userListCmd = &command{
	name:    "list",
	args:    "[USER...] [flags]",
	summary: "list users and their SCRAM mechanisms",
	help: `Lists the SCRAM users, or those named, one row per credential: the
mechanism and its iteration count. Passwords are never shown (the
cluster keeps only salted hashes). A named user without credentials is
an error.

Examples:
  gregor user list
  gregor user list alice
  gregor user list --json | jq -r '.[].user' | sort -u`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		return func(args []string) error {
			users := uniq(args)
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			described, err := adm.DescribeUserSCRAMs(ctx, users...)
			if err != nil {
				return r.wrap(err, "DescribeUserScramCredentials")
			}
			for _, u := range users {
				d, ok := described[u]
				switch {
				case !ok:
					return fmt.Errorf("user %q: no answer from the cluster", u)
				case errors.Is(d.Err, kerr.ResourceNotFound):
					return &failedError{msg: fmt.Sprintf("unknown user %q", u)}
				}
			}
			items := []userCredential{}
			for _, d := range described.Sorted() {
				if d.Err != nil {
					return fmt.Errorf("user %q: %w", d.User, d.Err)
				}
				for _, c := range d.CredInfos {
					items = append(items, userCredential{User: d.User, Mechanism: c.Mechanism.String(), Iterations: c.Iterations})
				}
			}
			if r.json {
				return printJSON(r.env.Stdout, items)
			}
			t := newTable(r.env.Stdout, "USER", "MECHANISM", "ITERATIONS")
			for _, it := range items {
				t.row(it.User, it.Mechanism, it.Iterations)
			}
			t.flush()
			return nil
		}
	},
}

// ---- delete

var userDeleteCmd = &command{
	name:    "delete",
	args:    "USER... [flags]",
	summary: "delete users' SCRAM credentials",
	help: `Deletes users: every credential they have, or only the one for
--mechanism. Connections already authenticated stay open; new ones as
the user fail. A user without credentials is an error
(RESOURCE_NOT_FOUND).

Examples:
  gregor user delete alice
  gregor user delete bob --mechanism SCRAM-SHA-512`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		mechFlag := fs.String("mechanism", "", "delete only the credential for SCRAM mechanism `NAME` (default: all the user has)")
		return func(args []string) error {
			users := uniq(args)
			if len(users) == 0 {
				return usagef("name at least one user")
			}
			var only kadm.ScramMechanism
			if *mechFlag != "" {
				m, err := scramMechanism(*mechFlag)
				if err != nil {
					return err
				}
				only = m
			}
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			// failed holds the users found wanting before deleting:
			// unknown ones, when deleting all their mechanisms.
			type failure struct {
				err error
				msg string
			}
			failed := map[string]failure{}
			var dels []kadm.DeleteSCRAM
			if only != 0 {
				for _, u := range users {
					dels = append(dels, kadm.DeleteSCRAM{User: u, Mechanism: only})
				}
			} else {
				described, err := adm.DescribeUserSCRAMs(ctx, users...)
				if err != nil {
					return r.wrap(err, "DescribeUserScramCredentials")
				}
				for _, u := range users {
					d, ok := described[u]
					switch {
					case !ok:
						failed[u] = failure{errors.New("no answer from the cluster"), ""}
					case d.Err != nil && !errors.Is(d.Err, kerr.ResourceNotFound):
						failed[u] = failure{d.Err, d.ErrMessage}
					default:
						for _, c := range d.CredInfos {
							if c.Mechanism == kadm.ScramSha256 || c.Mechanism == kadm.ScramSha512 {
								dels = append(dels, kadm.DeleteSCRAM{User: u, Mechanism: c.Mechanism})
							}
						}
						if !slices.ContainsFunc(dels, func(d kadm.DeleteSCRAM) bool { return d.User == u }) {
							failed[u] = failure{kerr.ResourceNotFound, "the user has no SCRAM credentials"}
						}
					}
				}
			}
			var resps kadm.AlteredUserSCRAMs
			if len(dels) > 0 {
				if resps, err = adm.AlterUserSCRAMs(ctx, dels, nil); err != nil {
					return r.wrap(err, "AlterUserScramCredentials")
				}
			}
			results := newItemResults("user", "users")
			for _, u := range users {
				if f, ok := failed[u]; ok {
					results.add(u, "", f.err, f.msg)
					continue
				}
				resp, ok := resps[u]
				if !ok {
					resp.Err = errors.New("no answer from the cluster")
				}
				results.add(u, "deleted", resp.Err, resp.ErrMessage)
			}
			return results.print(r)
		}
	},
}
