// Package console is the broker's read-only web console, served by the
// admin HTTP server under /console/ (docs/CONSOLE.md): an overview of the
// cluster, topics with their partitions and configs, consumer groups with
// their members, offsets and lag, and the security settings (ACLs, SCRAM
// user names, client quotas). Every page is server-rendered HTML from
// html/template with embedded assets (no JavaScript, nothing fetched from
// elsewhere), and JSON with ?format=json.
//
// The console reads the cluster as a Kafka client, through kadm, so it
// sees what any admin tool sees. Its connections are in memory
// (Options.Dial; gregor serve gives server.DialInternal), served as the
// internal principal that only in-process connections can have, whatever
// the listeners' TLS and SASL, and limited by the server to the read-only
// APIs: the console cannot change anything, and anyone who can reach the
// admin port can read the cluster's metadata through it.
package console
