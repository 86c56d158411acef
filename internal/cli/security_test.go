package cli

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// secureBroker starts a broker with a SASL_SSL listener and user alice
// (password alice-secret, SCRAM-SHA-256 and SCRAM-SHA-512).
func secureBroker(t *testing.T, opts ...ktest.Option) (*ktest.Broker, *ktest.TLSFiles) {
	t.Helper()
	files := ktest.NewTLSFiles(t)
	opts = append([]ktest.Option{
		ktest.Set("listeners", "SASL_SSL://127.0.0.1:0"),
		ktest.Set("ssl.keystore.location", files.Broker),
		ktest.Set("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"),
	}, opts...)
	kb := ktest.NewBroker(t, opts...)
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
		if _, err := kb.B.EnsureScramUser(mech, "alice", "alice-secret"); err != nil {
			t.Fatal(err)
		}
	}
	return kb, files
}

// login is the flags that connect over TLS trusting the test CA and
// authenticate as user.
func login(files *ktest.TLSFiles, mech, user, pass string) []string {
	return []string{"--tls-ca", files.CA, "--sasl-mechanism", mech, "--sasl-user", user, "--sasl-password", pass}
}

// with appends the login flags to a command.
func with(args []string, flags ...string) []string {
	return append(append([]string(nil), args...), flags...)
}

// TestSecureConnect: every way of giving the security settings reaches
// a SASL_SSL broker, flags taking precedence over the environment.
func TestSecureConnect(t *testing.T) {
	kb, files := secureBroker(t)
	a := kb.Addr
	var info clusterInfo
	decode(t, a, "", &info, with([]string{"cluster", "info"}, login(files, "SCRAM-SHA-256", "alice", "alice-secret")...)...)
	if len(info.Brokers) != 1 || info.ClusterID != kb.B.ClusterID() {
		t.Errorf("cluster info over SASL_SSL: %+v", info)
	}
	for _, mech := range []string{"scram-sha-512", "PLAIN"} {
		if r := gregor(t, a, "", with([]string{"topic", "list"}, login(files, mech, "alice", "alice-secret")...)...); r.code != 0 {
			t.Errorf("%s: exit %d, stderr %q", mech, r.code, r.stderr)
		}
	}

	env := map[string]string{
		"GREGOR_TLS":            "1",
		"GREGOR_TLS_CA":         files.CA,
		"GREGOR_SASL_MECHANISM": "SCRAM-SHA-256",
		"GREGOR_SASL_USER":      "alice",
		"GREGOR_SASL_PASSWORD":  "alice-secret",
	}
	if r := gregorEnv(t, a, env, "", "cluster", "info", "--no-apis"); r.code != 0 || !strings.Contains(r.stdout, "(controller)") {
		t.Errorf("settings from the environment: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	env["GREGOR_SASL_PASSWORD"] = "wrong"
	if r := gregorEnv(t, a, env, "", "topic", "list", "--sasl-password", "alice-secret"); r.code != 0 {
		t.Errorf("--sasl-password over a wrong $GREGOR_SASL_PASSWORD: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := gregorEnv(t, a, env, "", "topic", "list"); r.code != ExitAuth {
		t.Errorf("wrong $GREGOR_SASL_PASSWORD: exit %d, want %d; stderr %q", r.code, ExitAuth, r.stderr)
	}

	// Produce and consume authenticate too.
	sec := login(files, "SCRAM-SHA-512", "alice", "alice-secret")
	ok(t, a, "", with([]string{"topic", "create", "events"}, sec...)...)
	ok(t, a, "a\nb\n", with([]string{"produce", "events"}, sec...)...)
	if out := ok(t, a, "", with([]string{"consume", "events", "-o", "start", "-n", "2"}, sec...)...); out != "a\nb\n" {
		t.Errorf("consume over SASL_SSL: %q", out)
	}
}

// TestSecureConnectFailures: what goes wrong connecting is named, with
// exit status 4 for authentication, never 0.
func TestSecureConnectFailures(t *testing.T) {
	kb, files := secureBroker(t)
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stderr []string
	}{
		{"wrong password", login(files, "SCRAM-SHA-256", "alice", "wrong"), ExitAuth,
			[]string{`gregor topic list: cannot authenticate as "alice" with SCRAM-SHA-256: SASL_AUTHENTICATION_FAILED`}},
		{"unknown user", login(files, "PLAIN", "mallory", "alice-secret"), ExitAuth,
			[]string{`cannot authenticate as "mallory" with PLAIN: SASL_AUTHENTICATION_FAILED`}},
		{"no TLS", []string{"--sasl-mechanism", "PLAIN", "--sasl-user", "alice", "--sasl-password", "alice-secret"}, ExitFailed,
			[]string{"is TLS missing?", "--tls"}},
		{"CA not trusted", []string{"--tls", "--sasl-mechanism", "PLAIN", "--sasl-user", "alice", "--sasl-password", "alice-secret"}, ExitFailed,
			[]string{"certificate signed by unknown authority", "--tls-ca"}},
		{"other server name", append(login(files, "PLAIN", "alice", "alice-secret"), "--tls-server-name", "kafka.example.com"), ExitFailed,
			[]string{"not kafka.example.com"}},
		{"no SASL", []string{"--tls-ca", files.CA}, ExitFailed,
			[]string{"is SASL missing?", "--sasl-mechanism"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := gregor(t, kb.Addr, "", with([]string{"topic", "list", "--timeout", "5s"}, c.args...)...)
			if r.code != c.code {
				t.Errorf("exit %d, want %d; stderr %q", r.code, c.code, r.stderr)
			}
			for _, want := range c.stderr {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr %q lacks %q", r.stderr, want)
				}
			}
			if strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("error is not one line: %q", r.stderr)
			}
		})
	}

	// The error that decides the exit status is the broker's.
	r := &runner{env: Env{Getenv: func(string) string { return "" }}, ctx: context.Background()}
	fs := flag.NewFlagSet("topic list", flag.ContinueOnError)
	r.globalFlags(fs)
	if err := fs.Parse(append([]string{"-b", kb.Addr}, login(files, "SCRAM-SHA-256", "alice", "wrong")...)); err != nil {
		t.Fatal(err)
	}
	if err := r.sec.prepare(fs, r.env.Getenv); err != nil {
		t.Fatal(err)
	}
	_, err := r.client()
	var ke *kerr.Error
	if !errors.Is(err, kerr.SaslAuthenticationFailed) || !errors.As(err, &ke) || !isAuthError(ke) || exitCode(err) != ExitAuth {
		t.Errorf("wrong password: %v (%T), exit %d", err, err, exitCode(err))
	}
}

// TestTLSClientCertificate: --tls-cert presents the client's
// certificate to a listener with ssl.client.auth=required.
func TestTLSClientCertificate(t *testing.T) {
	files := ktest.NewTLSFiles(t)
	kb := ktest.NewBroker(t,
		ktest.Set("listeners", "SSL://127.0.0.1:0"),
		ktest.Set("ssl.keystore.location", files.Broker),
		ktest.Set("ssl.truststore.location", files.CA),
		ktest.Set("ssl.client.auth", "required"))
	if r := gregor(t, kb.Addr, "", "topic", "list", "--tls-ca", files.CA, "--tls-cert", files.Client); r.code != 0 {
		t.Errorf("with --tls-cert: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := gregorEnv(t, kb.Addr, map[string]string{"GREGOR_TLS_CA": files.CA, "GREGOR_TLS_CERT": files.Client}, "", "topic", "list"); r.code != 0 {
		t.Errorf("with $GREGOR_TLS_CERT: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := gregor(t, kb.Addr, "", "topic", "list", "--tls-ca", files.CA, "--timeout", "5s"); r.code == 0 {
		t.Errorf("without a client certificate: exit 0")
	}
}

// TestSecurityUsageErrors: security settings that cannot work are usage
// errors, found before connecting.
func TestSecurityUsageErrors(t *testing.T) {
	files := ktest.NewTLSFiles(t)
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		env    map[string]string
		args   []string
		stderr string
	}{
		{"unknown mechanism", nil, []string{"--sasl-mechanism", "GSSAPI", "--sasl-user", "a", "--sasl-password", "b"},
			`--sasl-mechanism "GSSAPI": want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`},
		{"unknown mechanism from the environment", map[string]string{"GREGOR_SASL_MECHANISM": "OAUTHBEARER"}, nil, `--sasl-mechanism "OAUTHBEARER"`},
		{"mechanism without user", nil, []string{"--sasl-mechanism", "PLAIN", "--sasl-password", "b"}, "--sasl-mechanism PLAIN needs --sasl-user and --sasl-password"},
		{"mechanism without password", map[string]string{"GREGOR_SASL_USER": "a"}, []string{"--sasl-mechanism", "scram-sha-256"},
			"--sasl-mechanism SCRAM-SHA-256 needs --sasl-user and --sasl-password"},
		{"user without mechanism", nil, []string{"--sasl-user", "a", "--sasl-password", "b"}, "--sasl-user needs --sasl-mechanism"},
		{"password without mechanism", map[string]string{"GREGOR_SASL_PASSWORD": "b"}, nil, "--sasl-password needs --sasl-mechanism"},
		{"missing CA file", nil, []string{"--tls-ca", filepath.Join(dir, "nope.pem")}, "--tls-ca: open " + filepath.Join(dir, "nope.pem") + ": no such file"},
		{"CA file without PEM", nil, []string{"--tls-ca", junk}, "--tls-ca " + junk + ": no PEM certificate in it"},
		{"certificate without key", nil, []string{"--tls-cert", files.CA}, "--tls-cert " + files.CA + ": want a PEM private key and certificate"},
		{"bad GREGOR_TLS", map[string]string{"GREGOR_TLS": "maybe"}, nil, `$GREGOR_TLS="maybe": want 1, true, 0 or false`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := gregorEnv(t, "127.0.0.1:1", c.env, "", with([]string{"topic", "list"}, c.args...)...)
			if r.code != ExitUsage {
				t.Errorf("exit %d, want %d; stderr %q", r.code, ExitUsage, r.stderr)
			}
			if want := "gregor topic list: " + c.stderr; !strings.HasPrefix(r.stderr, want) {
				t.Errorf("stderr %q, want it to start with %q", r.stderr, want)
			}
		})
	}
}

// TestSecurityHelp: every command lists the security flags, and a
// password in the environment never shows in the help.
func TestSecurityHelp(t *testing.T) {
	r := gregorEnv(t, "", map[string]string{"GREGOR_SASL_PASSWORD": "topsecret", "GREGOR_SASL_USER": "someone"}, "", "consume", "--help")
	if r.code != 0 || strings.Contains(r.stdout, "topsecret") || strings.Contains(r.stdout, "someone") {
		t.Errorf("consume --help: exit %d\n%s", r.code, r.stdout)
	}
	_, global, _ := strings.Cut(r.stdout, "Global flags:\n")
	for _, f := range securityFlags {
		if !strings.Contains(global, "      --"+f+" ") {
			t.Errorf("--%s is not among the global flags:\n%s", f, global)
		}
	}
	root := gregor(t, "", "", "--help").stdout
	for _, want := range []string{"--tls-ca FILE", "--sasl-mechanism NAME", "$GREGOR_SASL_PASSWORD", "\n  user "} {
		if !strings.Contains(root, want) {
			t.Errorf("gregor --help lacks %q", want)
		}
	}
}

// TestUserLifecycle: users created, listed and deleted with the CLI,
// each checked by authenticating as the user with the CLI.
func TestUserLifecycle(t *testing.T) {
	kb, files := secureBroker(t)
	a := kb.Addr
	admin := login(files, "SCRAM-SHA-256", "alice", "alice-secret")
	as := func(mech, user, pass string) result {
		t.Helper()
		return gregor(t, a, "", with([]string{"topic", "list"}, login(files, mech, user, pass)...)...)
	}

	// The password from stdin, then from the environment.
	if out := ok(t, a, "bob-secret\n", with([]string{"user", "create", "bob"}, admin...)...); out != "USER  STATUS\nbob   created\n" {
		t.Errorf("user create:\n%s", out)
	}
	if r := as("SCRAM-SHA-256", "bob", "bob-secret"); r.code != 0 {
		t.Fatalf("bob after user create: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := as("PLAIN", "bob", "bob-secret"); r.code != 0 {
		t.Errorf("bob with PLAIN: exit %d, stderr %q", r.code, r.stderr)
	}
	r := gregorEnv(t, a, map[string]string{"GREGOR_USER_PASSWORD": "bob-512"}, "",
		with([]string{"user", "create", "bob", "--mechanism", "scram-sha-512", "--iterations", "8192"}, admin...)...)
	if r.code != 0 || r.stdout != "USER  STATUS\nbob   created\n" {
		t.Errorf("user create --mechanism SCRAM-SHA-512: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := as("SCRAM-SHA-512", "bob", "bob-512"); r.code != 0 {
		t.Errorf("bob with SCRAM-SHA-512: exit %d, stderr %q", r.code, r.stderr)
	}

	// Creating again changes the password.
	var created []map[string]string
	decode(t, a, "", &created, with([]string{"user", "create", "bob", "carol", "bob", "--password", "new-secret"}, admin...)...)
	if len(created) != 2 || created[0]["user"] != "bob" || created[0]["status"] != "changed" || created[1]["user"] != "carol" || created[1]["status"] != "created" {
		t.Errorf("user create bob carol --json: %v", created)
	}
	if r := as("SCRAM-SHA-256", "bob", "bob-secret"); r.code != ExitAuth {
		t.Errorf("bob's old password: exit %d, want %d", r.code, ExitAuth)
	}
	if r := as("SCRAM-SHA-256", "bob", "new-secret"); r.code != 0 {
		t.Errorf("bob's new password: exit %d, stderr %q", r.code, r.stderr)
	}

	golden(t, "user_list", ok(t, a, "", with([]string{"user", "list"}, admin...)...))
	var listed []userCredential
	decode(t, a, "", &listed, with([]string{"user", "list", "bob"}, admin...)...)
	want := []userCredential{{"bob", "SCRAM-SHA-256", 4096}, {"bob", "SCRAM-SHA-512", 8192}}
	if len(listed) != 2 || listed[0] != want[0] || listed[1] != want[1] {
		t.Errorf("user list bob --json: %+v, want %+v", listed, want)
	}
	r = gregor(t, a, "", with([]string{"user", "list", "nobody"}, admin...)...)
	if r.code != ExitFailed || r.stderr != "gregor user list: unknown user \"nobody\"\n" {
		t.Errorf("user list nobody: exit %d, stderr %q", r.code, r.stderr)
	}

	// Deleting one mechanism leaves the other.
	if out := ok(t, a, "", with([]string{"user", "delete", "bob", "--mechanism", "SCRAM-SHA-512"}, admin...)...); out != "USER  STATUS\nbob   deleted\n" {
		t.Errorf("user delete --mechanism:\n%s", out)
	}
	if r := as("SCRAM-SHA-512", "bob", "bob-512"); r.code != ExitAuth {
		t.Errorf("bob with the deleted SCRAM-SHA-512: exit %d, want %d", r.code, ExitAuth)
	}
	if r := as("SCRAM-SHA-256", "bob", "new-secret"); r.code != 0 {
		t.Errorf("bob with SCRAM-SHA-256 kept: exit %d, stderr %q", r.code, r.stderr)
	}
	r = gregor(t, a, "", with([]string{"user", "delete", "carol", "--mechanism", "SCRAM-SHA-512"}, admin...)...)
	if r.code != ExitFailed || !strings.Contains(r.stdout, "carol  failed: RESOURCE_NOT_FOUND") {
		t.Errorf("deleting a credential carol lacks: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Deleting every mechanism; an unknown user fails alone.
	r = gregor(t, a, "", with([]string{"user", "delete", "bob", "nobody", "carol"}, admin...)...)
	if r.code != ExitFailed {
		t.Errorf("user delete bob nobody carol: exit %d, want %d", r.code, ExitFailed)
	}
	golden(t, "user_delete", r.stdout+"--- stderr\n"+r.stderr)
	for _, mech := range []string{"SCRAM-SHA-256", "PLAIN"} {
		if r := as(mech, "bob", "new-secret"); r.code != ExitAuth || !strings.Contains(r.stderr, `cannot authenticate as "bob"`) {
			t.Errorf("deleted bob with %s: exit %d, stderr %q", mech, r.code, r.stderr)
		}
	}
	decode(t, a, "", &listed, with([]string{"user", "list"}, admin...)...)
	if len(listed) != 2 || listed[0].User != "alice" || listed[1].User != "alice" {
		t.Errorf("user list after the deletes: %+v", listed)
	}
}

// TestUserUsageErrors: user commands check their arguments before
// connecting.
func TestUserUsageErrors(t *testing.T) {
	for _, c := range []struct {
		name   string
		stdin  string
		args   []string
		stderr string
	}{
		{"no user", "x\n", []string{"user", "create"}, "name at least one user"},
		{"PLAIN is no SCRAM mechanism", "x\n", []string{"user", "create", "a", "--mechanism", "PLAIN"}, `--mechanism "PLAIN": want SCRAM-SHA-256 or SCRAM-SHA-512`},
		{"too few iterations", "x\n", []string{"user", "create", "a", "--iterations", "100"}, "--iterations 100: want 4096 to 16384"},
		{"no password", "", []string{"user", "create", "a"}, "no password: give --password, $GREGOR_USER_PASSWORD or a line on stdin"},
		{"empty line", "\n", []string{"user", "create", "a"}, "no password"},
		{"delete nobody", "", []string{"user", "delete"}, "name at least one user"},
		{"delete bad mechanism", "", []string{"user", "delete", "a", "--mechanism", "MD5"}, `--mechanism "MD5"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := gregor(t, "127.0.0.1:1", c.stdin, c.args...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, c.stderr) {
				t.Errorf("exit %d, want %d; stderr %q, want %q", r.code, ExitUsage, r.stderr, c.stderr)
			}
		})
	}
}

// TestUserPasswordLine: the password is the first line of stdin, with
// its line end (LF or CRLF) dropped and nothing else.
func TestUserPasswordLine(t *testing.T) {
	for in, want := range map[string]string{"pw\n": "pw", "pw\r\n": "pw", "pw": "pw", " p w \nmore\n": " p w "} {
		r := &runner{env: Env{Stdin: strings.NewReader(in), Getenv: func(string) string { return "" }}}
		if got, err := r.newPassword("", []string{"a"}); err != nil || got != want {
			t.Errorf("stdin %q: %q, %v; want %q", in, got, err, want)
		}
	}
}
