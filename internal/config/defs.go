package config

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
)

// Source is where an effective value came from, numbered as Kafka's
// DescribeConfigs ConfigSource.
type Source int8

// Sources, numbered as Kafka's.
const (
	SourceUnknown             Source = 0
	SourceDynamicTopic        Source = 1
	SourceDynamicBroker       Source = 2
	SourceDynamicDefault      Source = 3
	SourceStaticBroker        Source = 4
	SourceDefault             Source = 5
	SourceDynamicBrokerLogger Source = 6
)

const (
	msPerHour   = 3600 * 1000
	msPerMinute = 60 * 1000
	maxLong     = "9223372036854775807"
)

func long(name, def, doc string, opts ...func(*Def)) Def {
	return mk(Def{Name: name, Type: TypeLong, Default: def, Doc: doc}, opts)
}
func integer(name, def, doc string, opts ...func(*Def)) Def {
	return mk(Def{Name: name, Type: TypeInt, Default: def, Doc: doc}, opts)
}
func boolean(name, def, doc string, opts ...func(*Def)) Def {
	return mk(Def{Name: name, Type: TypeBoolean, Default: def, Doc: doc}, opts)
}
func str(name, def, doc string, opts ...func(*Def)) Def {
	return mk(Def{Name: name, Type: TypeString, Default: def, Doc: doc}, opts)
}
func double(name, def, doc string, opts ...func(*Def)) Def {
	return mk(Def{Name: name, Type: TypeDouble, Default: def, Doc: doc}, opts)
}
func list(name, def, doc string, opts ...func(*Def)) Def {
	return mk(Def{Name: name, Type: TypeList, Default: def, Doc: doc}, opts)
}
func mk(d Def, opts []func(*Def)) Def {
	for _, o := range opts {
		o(&d)
	}
	return d
}

func dynamic(d *Def)   { d.Dynamic = true }
func readOnly(d *Def)  { d.ReadOnly = true }
func null(d *Def)      { d.Null = true }
func sensitive(d *Def) { d.Sensitive = true }
func enum(vals ...string) func(*Def) {
	return func(d *Def) { d.Enum = vals }
}
func validWith(fn func(string) error) func(*Def) {
	return func(d *Def) { d.Valid = fn }
}
func between(min, max float64) func(*Def) {
	return func(d *Def) { d.Bounded, d.Min, d.Max = true, min, max }
}
func syn(names ...any) func(*Def) {
	return func(d *Def) {
		for i := 0; i < len(names); i += 2 {
			d.Synonyms = append(d.Synonyms, Synonym{Name: names[i].(string), Scale: int64(names[i+1].(int))})
		}
	}
}

var compressionTypes = []string{"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"}

// Broker holds the broker property definitions.
var Broker = newRegistry([]Def{
	integer("node.id", "0", "The node ID of this server in the cluster.", readOnly, atLeast(0)),
	integer("broker.id", "-1", "Alias of node.id kept for older configuration files.", readOnly),
	str("log.dirs", "", "The data directory holding partition logs and cluster metadata (Gregor uses the first of a comma-separated list); gregor serve --data-dir overrides it.", readOnly, null),
	str("log.dir", "./gregor-data", "The data directory used when log.dirs is not set; gregor serve --data-dir overrides it.", readOnly),
	str("listeners", "PLAINTEXT://127.0.0.1:9092", "Where clients connect: a comma-separated list of NAME://host:port, each name a security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) or mapped to one by listener.security.protocol.map (an empty host means every interface; controller.listener.names are skipped). gregor serve --listen overrides the first one's address.", readOnly),
	str("advertised.listeners", "", "The NAME://host:port clients of each listener are told to connect to (a Metadata request is answered with its own listener's); a listener missing here advertises its own address. gregor serve --advertise overrides the first one.", readOnly, null),
	str("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL", "Security protocol of each listener name, NAME:PROTOCOL pairs (INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL). The ssl.* properties and sasl.enabled.mechanisms apply to every listener unless listener.name.<name>.<property> (the name in lower case) overrides one for that listener.", readOnly),
	str("controller.listener.names", "CONTROLLER", "Listener names of the controller quorum, skipped by the client listeners (the controller listens on its address in controller.quorum.voters). The first one's protocol (listener.security.protocol.map; PLAINTEXT when the map does not name it) secures the controllers' connections: PLAINTEXT, or SSL with its ssl.* settings (listener.name.<name>.ssl.* overriding the broker-wide ones) as mutual TLS: every node presents its keystore's certificate, and only nodes whose certificate the truststore's CAs signed are let in, whatever ssl.client.auth says. SASL is not supported there.", readOnly),
	str("controller.quorum.voters", "", "The controllers replicating the cluster metadata, id@host:port separated by commas (Kafka's form); every node of a cluster is one, and listens for the others on its own address here. Empty, or this node alone: a single node, a quorum of one. More than one voter is cluster mode, a preview: partitions are replicated (replication.factor) and fail over (docs/CLUSTER.md); the brokers reach each other on inter.broker.listener.name and the controllers over controller.listener.names (docs/SECURITY.md, \"Cluster security\").", readOnly, validWith(validVoters)),
	str("broker.rack", "", "Cluster mode: the rack (or availability zone) of this broker, listed in Metadata and DescribeCluster. With replica.selector.class set, a consumer that names its own rack (client.rack) is sent to read from an in-sync replica in that rack (KIP-392).", readOnly, null),
	str("replica.selector.class", "", "Cluster mode: how a partition's leader picks the replica a consumer should fetch from (KIP-392). Unset: the leader serves every consumer. org.apache.kafka.common.replica.RackAwareReplicaSelector: a consumer with a client.rack is sent to an in-sync replica in its rack (the leader when it is one, else the replica furthest ahead), and keeps fetching from the leader when none is. Followers serve consumers that fetch with Fetch v11 or later whatever this says, up to their high watermark.", readOnly, null, enum("org.apache.kafka.common.replica.RackAwareReplicaSelector")),
	integer("broker.session.timeout.ms", "9000", "Cluster mode: how long the active controller (the metadata quorum's Raft leader) goes without a message from a broker's controller before it fences the broker. Raft's messages are the heartbeats: every voter answers the leader's every tick. A fenced broker leaves every ISR, and the partitions it led get a new leader, the first live replica of their ISR (offline when none, unless unclean.leader.election.enable); a controller just elected counts from its election. Single node: unused.", atLeast(1), readOnly),
	boolean("auto.leader.rebalance.enable", "true", "Cluster mode: the active controller moves each partition's leadership back to its preferred replica (the first of its replicas) when that replica is live and in the ISR, checking every leader.imbalance.check.interval.seconds, so that leaderships spread out again after brokers restart (kafka-leader-election.sh, or ElectLeaders, does it at once).", readOnly),
	long("leader.imbalance.check.interval.seconds", "300", "Cluster mode: how often the active controller looks for partitions not led by their preferred replica (auto.leader.rebalance.enable).", atLeast(1), readOnly),
	integer("leader.imbalance.per.broker.percentage", "10", "Accepted for compatibility and unused: as Kafka's KRaft controller, Gregor moves every partition whose preferred replica can lead, however few.", readOnly),
	str("ssl.keystore.type", "PEM", "Format of the listener's key and certificate: PEM only (JKS and PKCS12 keystores are Java formats; convert them with openssl).", enum("PEM"), readOnly),
	str("ssl.keystore.location", "", "SSL and SASL_SSL listeners: a PEM file holding the private key (unencrypted PKCS#8, PKCS#1 or EC) and the certificate chain, leaf first. Reread when it changes (looked at every 10 s by new connections), so a renewed certificate needs no restart. The inter-broker and controller listeners' certificate is also this broker's client certificate when it connects to the others (extended key usage serverAuth and clientAuth).", readOnly, null),
	str("ssl.keystore.key", "", "The private key in PEM, instead of ssl.keystore.location (with ssl.keystore.certificate.chain).", readOnly, null, sensitive),
	str("ssl.keystore.certificate.chain", "", "The certificate chain in PEM, leaf first, instead of ssl.keystore.location (with ssl.keystore.key).", readOnly, null),
	str("ssl.truststore.type", "PEM", "Format of the certificates trusted to sign client certificates: PEM only.", enum("PEM"), readOnly),
	str("ssl.truststore.location", "", "A PEM file of the CA certificates that sign client certificates (ssl.client.auth requested or required) and, on the inter-broker and controller listeners, the other brokers' certificates (the system's CAs without one; the controller listener requires one).", readOnly, null),
	str("ssl.truststore.certificates", "", "The trusted CA certificates in PEM, instead of ssl.truststore.location.", readOnly, null),
	list("ssl.enabled.protocols", "TLSv1.2,TLSv1.3", "TLS versions SSL and SASL_SSL listeners accept: TLSv1.2 and TLSv1.3 (the oldest and newest listed bound the range).", readOnly),
	str("ssl.client.auth", "none", "Client certificates on SSL listeners: none, requested (verified when given) or required.", enum("none", "requested", "required"), readOnly),
	str("ssl.principal.mapping.rules", "DEFAULT", "How a TLS client certificate's subject (RFC 2253, as CN=Alice,OU=ServiceUsers,O=Acme) becomes the client's principal name, User:<name>, on SSL listeners (KIP-371): rules separated by commas, tried in order, the first that matches giving the name. DEFAULT is the whole subject; RULE:pattern/replacement/ with L or U after the last slash to lower- or upper-case the result applies when pattern, a regular expression, matches the whole subject, replacing its matches by replacement ($1, $2 … its groups; \\/ a slash, \\$ a dollar sign). RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,DEFAULT makes that subject User:alice. Per listener: listener.name.<name>.ssl.principal.mapping.rules. A subject that no rule matches fails the connection's authentication (it is closed). The patterns are Go (RE2) regular expressions: Java syntax RE2 lacks or reads otherwise (back references, lookaround, possessive quantifiers, nested classes, (?U)) stops the broker at start. It applies to the brokers' own certificates too, on the inter-broker listener: super.users names the mapped principals. SASL users are User:<name> whatever the rules.", readOnly),
	list("sasl.enabled.mechanisms", "SCRAM-SHA-256,SCRAM-SHA-512", "SASL mechanisms offered on SASL_PLAINTEXT and SASL_SSL listeners: SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN (checked against the users' SCRAM credentials; sends the password, so use it over SSL). Users are created with AlterUserScramCredentials (kafka-configs --entity-type users, kadm) or gregor serve --add-scram.", readOnly),
	str("inter.broker.listener.name", "", "Cluster mode: the listener the brokers connect to each other on, for replication and the requests between brokers (transaction markers). Every broker registers each listener's advertised endpoint and the others dial this one's, with its ssl.* settings (the keystore as this broker's client certificate, the truststore to verify the other's) and, when it is SASL_PLAINTEXT or SASL_SSL, sasl.mechanism.inter.broker.protocol. Default: the first of listeners. Mutually exclusive with security.inter.broker.protocol.", readOnly, null),
	str("security.inter.broker.protocol", "", "Cluster mode: Kafka's older way to choose the inter-broker listener, by security protocol: the listener named PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL. Mutually exclusive with inter.broker.listener.name. Default: the first of listeners (Kafka's is PLAINTEXT).", enum(Plaintext, SSL, SASLPlaintext, SASLSSL), readOnly, null),
	str("sasl.mechanism.inter.broker.protocol", "PLAIN", "Cluster mode: the SASL mechanism a broker authenticates with to the others when the inter-broker listener is SASL_PLAINTEXT or SASL_SSL; it must be one of that listener's sasl.enabled.mechanisms, and its credentials are listener.name.<listener>.<mechanism>.sasl.jaas.config. Kafka's default, GSSAPI (Kerberos), is not supported.", enum("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), readOnly),
	mk(Def{Name: "sasl.jaas.config", Type: TypePassword, Doc: "The credentials a broker authenticates with to the others' inter-broker listener, read only per listener and mechanism as Kafka's brokers read them: listener.name.<listener>.<mechanism>.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"broker\" password=\"broker-secret\"; (ScramLoginModule for SCRAM-SHA-256 and SCRAM-SHA-512). The user is a SCRAM user of the cluster (gregor serve --add-scram), and with an authorizer it needs CLUSTER_ACTION on the cluster: put it in super.users. The user_<name> options of Kafka's PlainLoginModule are ignored: Gregor's users are the SCRAM credentials in the cluster metadata."}, []func(*Def){readOnly, null, sensitive, validWith(validJAAS)}),
	str("ssl.endpoint.identification.algorithm", "https", "How a broker connecting to another (the inter-broker listener, the controller listener) checks the other's certificate: https, that it names the host dialed (the advertised host, or the address in controller.quorum.voters) and that the truststore's CAs signed it; empty, only the latter.", enum("https", ""), readOnly),
	str("authorizer.class.name", "", "Enables ACLs: org.apache.kafka.metadata.authorizer.StandardAuthorizer (or kafka.security.authorizer.AclAuthorizer, the same to Gregor) checks every request against the ACLs kept in the cluster metadata, managed with CreateAcls, DescribeAcls and DeleteAcls (kafka-acls, kadm, gregor acl). Empty: no authorization, every client may do everything.", enum("", StandardAuthorizer, AclAuthorizer), readOnly),
	str("super.users", "", "Principals allowed everything whatever the ACLs, separated by semicolons: User:alice;User:CN=admin,O=acme (a SASL user is User:<name>, a TLS client certificate User:<its subject, or what ssl.principal.mapping.rules make of it>, anybody else User:ANONYMOUS).", readOnly, validWith(validPrincipals)),
	boolean("allow.everyone.if.no.acl.found", "false", "With an authorizer: allow a request on a resource that no ACL names (none for it, its prefixes or the wildcard). Kafka's default, false, denies it.", readOnly),
	integer("quota.window.num", "11", "Samples of each client's byte rate kept for client quotas (producer_byte_rate, consumer_byte_rate): the rate is measured over this many windows.", atLeast(1), readOnly),
	integer("quota.window.size.seconds", "1", "Length of one client quota sample window, in seconds.", atLeast(1), readOnly),
	integer("num.partitions", "1", "Default number of partitions for auto-created topics and CreateTopics with -1.", atLeast(1)),
	integer("default.replication.factor", "1", "Default replication factor for automatically created topics.", atLeast(1)),
	boolean("auto.create.topics.enable", "true", "Create a topic when a client asks for its metadata or produces to it."),
	boolean("delete.topic.enable", "true", "Allow DeleteTopics; false refuses every topic with TOPIC_DELETION_DISABLED, as Kafka does.", readOnly),
	integer("message.max.bytes", "1048588", "Largest record batch size allowed (topic override max.message.bytes).", atLeast(0), dynamic),
	integer("socket.request.max.bytes", "104857600", "Largest request size accepted on a socket; larger frames close the connection.", atLeast(1), readOnly),
	integer("max.connections", "2147483647", "Client connections open at once across all listeners; at the limit the broker stops accepting until one closes (new connections wait in the listen backlog), as Kafka does.", atLeast(0), readOnly),
	integer("max.connections.per.ip", "2147483647", "Client connections open at once from one IP address; beyond it a new connection is closed at once.", atLeast(0), readOnly),
	str("max.connections.per.ip.overrides", "", "Per-address exceptions to max.connections.per.ip, IP:COUNT pairs separated by commas (IP addresses only; Kafka also takes host names).", readOnly),
	integer("queued.max.requests", "500", "Requests in flight per connection before the broker stops reading from it.", atLeast(1), readOnly),
	long("connections.max.idle.ms", "600000", "Idle connections are closed after this many milliseconds since their last request or response; -1 (as in Kafka) or 0 never closes them.", atLeast(-1)),
	integer("num.io.threads", "8", "Accepted for compatibility; Gregor schedules request work on goroutines.", atLeast(1), dynamic),
	integer("num.network.threads", "3", "Accepted for compatibility; Gregor uses a goroutine per connection.", atLeast(1), dynamic),
	long("timer.slack.ns", "1000000", "Gregor only, Linux: the timer slack gregor serve runs with (prctl PR_SET_TIMERSLACK), in nanoseconds; it re-executes itself once at start, keeping its process ID, so that every thread has it. The Go runtime's monitor thread sleeps 20 µs at a time while the process is busy, and each wakeup costs a context switch; with 1 ms of slack it wakes about a tenth as often and the broker uses a fifth less CPU (docs/PERFORMANCE.md). Timers fire up to this much late. 0 keeps the slack gregor was started with (Linux's default is 50 µs).", readOnly, between(0, 100e6)),
	list("admin.console.allowed.hosts", "", "Gregor only: host names the web console may be reached by (the request's Host, without port), besides IP addresses and localhost. Other names are refused, so that a web page cannot point its own domain at the admin address (DNS rebinding) and read the console.", readOnly),
	boolean("admin.console.enable", "true", "Gregor only: serve the read-only web console under /console/ on the admin HTTP address (gregor serve --admin-listen; docs/CONSOLE.md). It reads the cluster through an in-process connection that needs no credentials, so anyone who can reach the admin address can read the cluster's metadata (topics, consumer groups and offsets, ACLs, SCRAM user names, quotas) whatever the listeners' security: keep --admin-listen on a trusted interface, or set this to false.", readOnly),
	integer("log.segment.bytes", "1073741824", "Segment size at which a partition's active segment rolls.", atLeast(14), dynamic),
	long("log.roll.ms", "", "Time after which a segment rolls, in ms (overrides log.roll.hours).", null, atLeast(1), dynamic),
	integer("log.roll.hours", "168", "Time after which a segment rolls, in hours.", atLeast(1)),
	long("log.roll.jitter.ms", "", "Accepted for compatibility (segment.jitter.ms); segments roll without jitter.", null, atLeast(0), dynamic),
	integer("log.roll.jitter.hours", "0", "Accepted for compatibility; segments roll without jitter.", atLeast(0)),
	boolean("log.preallocate", "false", "Accepted for compatibility and ignored: Gregor reserves space past an active segment's data on its own (zeros, in steps of up to 8 MiB) while the partition's durable appends are small and synced one log at a time, and trims it at roll and close; see also log.allocate.ahead.bytes.", dynamic),
	boolean("log.message.downconversion.enable", "true", "Accepted for compatibility; Gregor stores and serves only RecordBatch v2.", dynamic),
	integer("log.index.interval.bytes", "4096", "Bytes between offset index entries.", atLeast(0), dynamic),
	integer("log.index.size.max.bytes", "10485760", "Maximum offset index size; the segment rolls when full.", atLeast(4), dynamic),
	long("log.flush.interval.messages", maxLong, "Messages appended before a forced fsync. The default keeps Gregor's durable mode: every acknowledged write is synced (group commit). Setting this or log.flush.interval.ms relaxes it: produce is acknowledged before fsync.", atLeast(1), dynamic),
	long("log.flush.interval.ms", "", "Maximum time in ms data may sit unsynced when relaxed durability is configured.", null, atLeast(0), dynamic),
	long("log.flush.scheduler.interval.ms", maxLong, "Accepted for compatibility.", atLeast(0)),
	long("log.cache.keep.bytes", "-1", "Gregor only: at most how many of each partition's newest durable bytes stay in the page cache; older durable pages are released after each sync, and consumers reading further back prefetch them from disk. -1: no cap per partition, log.cache.budget.bytes alone sets the windows (with that -1 too, nothing is released and caching is left to the kernel, as Kafka does).", atLeast(-1), dynamic),
	long("log.allocate.ahead.bytes", "1048576", "Gregor only: on a file system without a journal (ext4 created without one), how far past its data an active segment's disk blocks are allocated ahead of appends, in steps of four times the segment's data (at least 256 KiB). The syncs then write the allocation's metadata (block bitmaps, group descriptors) once per step instead of once per sync: with 10,000 busy partitions 10-17% more records/s in our measurements (see docs/PERFORMANCE.md). The disk holds up to this much more than the data per active segment; a roll or a clean shutdown releases it. 0: off. On file systems with a journal nothing is allocated ahead.", atLeast(0), dynamic),
	long("log.cache.budget.bytes", "0", "Gregor only: how many bytes of durable data all busy partitions keep in the page cache together. Each partition synced in the last 5 s keeps its share (at least 64 KiB, at most log.cache.keep.bytes) and releases older pages after each sync: consumers catching up on data within it read from memory, further back from disk. Releasing lets the broker reuse its own pages, which costs much less CPU than taking fresh ones, above all in VMs that hand free memory back to their host (see docs/PERFORMANCE.md). 0: half of the memory the broker may use (the machine's, or its cgroup's limit). -1: no budget.", atLeast(-1), dynamic),
	long("log.flush.offset.checkpoint.interval.ms", "60000", "Accepted for compatibility: Gregor checkpoints a log's recovery point when it enters another segment, after 64 MiB or 60 s of progress, and at a clean shutdown.", atLeast(0)),
	str("log.message.timestamp.type", "CreateTime", "Timestamp type of appended records: CreateTime or LogAppendTime.", enum("CreateTime", "LogAppendTime"), dynamic),
	long("log.message.timestamp.before.max.ms", maxLong, "Largest allowed gap between a record's timestamp and the broker's clock, backwards.", atLeast(0), dynamic),
	long("log.message.timestamp.after.max.ms", "3600000", "Largest allowed gap between a record's timestamp and the broker's clock, forwards.", atLeast(0), dynamic),
	long("log.retention.ms", "", "Time a log segment is kept before deletion, in ms (overrides minutes and hours); -1 = forever.", null, atLeast(-1), dynamic),
	integer("log.retention.minutes", "", "Retention in minutes (overrides hours).", null, atLeast(-1)),
	integer("log.retention.hours", "168", "Retention in hours.", atLeast(-1)),
	long("log.retention.bytes", "-1", "Maximum size of a partition before old segments are deleted; -1 = no limit.", atLeast(-1), dynamic),
	long("log.retention.check.interval.ms", "300000", "How often the retention pass deletes segments past retention.ms or retention.bytes (and retries reopening partitions whose disk failed).", atLeast(1)),
	long("log.segment.delete.delay.ms", "60000", "Accepted for compatibility: deleted segments' files are removed at once; readers that have them open keep reading.", atLeast(0), dynamic),
	list("log.cleanup.policy", "delete", "Default cleanup policy: delete, compact, or both.", enum("delete", "compact"), dynamic),
	boolean("log.cleaner.enable", "true", "Run the log compactor for topics with cleanup.policy=compact.", readOnly),
	integer("log.cleaner.threads", "1", "Compactor goroutines (0 stops compaction).", atLeast(0), dynamic),
	long("log.cleaner.backoff.ms", "15000", "Sleep between compactor passes when there is nothing to clean.", atLeast(0), dynamic),
	long("log.cleaner.dedupe.buffer.size", "134217728", "Memory for the compactor's key → offset map, shared by its threads (about 32 bytes per key); a pass cleans as far as the keys it can hold.", atLeast(1<<20), dynamic),
	integer("log.cleaner.io.buffer.size", "524288", "Read and write buffer of each compactor thread.", atLeast(4096), dynamic),
	double("log.cleaner.io.buffer.load.factor", "0.9", "Accepted for compatibility.", between(0, 1), dynamic),
	double("log.cleaner.io.max.bytes.per.second", "1.7976931348623157E308", "Limit on the bytes the compactor reads and writes per second, all threads together.", atLeast(1), dynamic),
	double("log.cleaner.min.cleanable.ratio", "0.5", "Minimum dirty ratio for a log to be compacted.", between(0, 1), dynamic),
	long("log.cleaner.min.compaction.lag.ms", "0", "Minimum time a record stays uncompacted.", atLeast(0), dynamic),
	long("log.cleaner.max.compaction.lag.ms", maxLong, "Maximum time a record stays uncompacted.", atLeast(1), dynamic),
	long("log.cleaner.delete.retention.ms", "86400000", "How long tombstones are kept after compaction.", atLeast(0), dynamic),
	integer("min.insync.replicas", "1", "Minimum in-sync replicas for acks=all: with fewer in the partition's ISR, an acks=all produce gets NOT_ENOUGH_REPLICAS (retriable) and nothing is appended, as on Kafka. A single broker is one in-sync replica.", atLeast(1), dynamic),
	str("compression.type", "producer", "Default compression of topics.", enum(compressionTypes...), dynamic),
	boolean("unclean.leader.election.enable", "false", "Cluster mode: when no in-sync replica of a partition is live, elect its first live replica anyway (records the old leader acknowledged may be lost) instead of leaving the partition offline until one returns. Single node: unused.", dynamic),
	long("replica.lag.time.max.ms", "30000", "Cluster mode: a follower that has not caught up with its leader's log for this long leaves the partition's ISR (checked every half of it); it rejoins once caught up. Single node: unused.", atLeast(0)),
	integer("offsets.topic.num.partitions", "50", "Partitions of __consumer_offsets.", atLeast(1), readOnly),
	integer("offsets.topic.replication.factor", "3", "Replicas of each __consumer_offsets partition, capped at the number of brokers when the topic is created (Kafka refuses to create it instead): one on a single broker.", atLeast(1), readOnly),
	integer("offsets.topic.segment.bytes", "104857600", "Segment size of __consumer_offsets.", atLeast(1), readOnly),
	long("offsets.retention.minutes", "10080", "Committed offsets of empty groups are kept this long.", atLeast(1)),
	long("offsets.retention.check.interval.ms", "600000", "How often expired offsets are removed.", atLeast(1)),
	integer("offsets.commit.timeout.ms", "5000", "Accepted for compatibility: an offset commit waits only for its local fsync.", atLeast(1)),
	integer("offset.metadata.max.bytes", "4096", "Maximum length of the metadata string of an offset commit, counted in UTF-16 code units (Java chars) as Kafka counts it.", atLeast(0)),
	integer("group.initial.rebalance.delay.ms", "3000", "Delay of the first rebalance of an empty group, to let more members join.", atLeast(0)),
	integer("group.min.session.timeout.ms", "6000", "Minimum allowed session timeout of group members.", atLeast(0)),
	integer("group.max.session.timeout.ms", "1800000", "Maximum allowed session timeout of group members.", atLeast(0)),
	integer("group.max.size", "2147483647", "Maximum members of a consumer group.", atLeast(1)),
	integer("group.consumer.heartbeat.interval.ms", "5000", "Heartbeat interval the coordinator gives members of consumer groups (KIP-848).", atLeast(1)),
	integer("group.consumer.session.timeout.ms", "45000", "A member of a consumer group (KIP-848) that sends no heartbeat for this long is removed.", atLeast(1)),
	integer("group.consumer.max.size", "2147483647", "Maximum members of a consumer group (KIP-848).", atLeast(1)),
	integer("transaction.state.log.num.partitions", "50", "Partitions of __transaction_state.", atLeast(1), readOnly),
	integer("transaction.state.log.replication.factor", "3", "Replicas of each __transaction_state partition, capped at the number of brokers when the topic is created (Kafka refuses to create it instead): one on a single broker.", atLeast(1), readOnly),
	integer("transaction.max.timeout.ms", "900000", "Largest transaction timeout a producer may ask for.", atLeast(1)),
	integer("transactional.id.expiration.ms", "604800000", "Idle transactional IDs expire after this long.", atLeast(1)),
	integer("producer.id.expiration.ms", "86400000", "Idle producer state expires after this long.", atLeast(1), dynamic),
	integer("transaction.abort.timed.out.transaction.cleanup.interval.ms", "10000", "How often timed-out transactions are aborted.", atLeast(1)),
	integer("fetch.max.bytes", "57671680", "Maximum bytes of one fetch response.", atLeast(0)),
	integer("max.incremental.fetch.session.cache.slots", "1000", "Fetch sessions kept (KIP-227).", atLeast(0)),
})

// Topic holds the topic property definitions with their broker synonyms.
var Topic = newRegistry([]Def{
	list("cleanup.policy", "delete", "delete, compact, or both (compact,delete): delete removes whole old segments by retention.ms and retention.bytes; compact keeps the newest record per key. Keyless records are refused on compacted topics.", enum("delete", "compact"), syn("log.cleanup.policy", 1)),
	str("compression.type", "producer", "Compression of the topic's batches: producer keeps what producers send (no re-encoding); uncompressed, gzip, snappy, lz4 or zstd make the broker recompress batches in another codec on produce.", enum(compressionTypes...), syn("compression.type", 1)),
	long("delete.retention.ms", "86400000", "How long a tombstone (null value) stays after a compaction pass first kept it: it is removed by a later pass once its batch's timestamp is older than this.", atLeast(0), syn("log.cleaner.delete.retention.ms", 1)),
	long("file.delete.delay.ms", "60000", "Accepted for compatibility: deleted segments' files are removed at once.", atLeast(0), syn("log.segment.delete.delay.ms", 1)),
	long("flush.messages", maxLong, "Messages appended before a forced fsync; setting it relaxes durable acknowledgement.", atLeast(1), syn("log.flush.interval.messages", 1)),
	long("flush.ms", maxLong, "Time before a forced fsync; setting it relaxes durable acknowledgement.", atLeast(0), syn("log.flush.interval.ms", 1)),
	integer("index.interval.bytes", "4096", "Bytes between offset index entries.", atLeast(0), syn("log.index.interval.bytes", 1)),
	integer("max.message.bytes", "1048588", "Largest record batch size allowed.", atLeast(0), syn("message.max.bytes", 1)),
	long("max.compaction.lag.ms", maxLong, "Maximum time a record stays uncompacted: a log whose oldest dirty segment is older is compacted whatever its dirty ratio, and on compacted topics the active segment rolls after at most this long.", atLeast(1), syn("log.cleaner.max.compaction.lag.ms", 1)),
	long("message.timestamp.after.max.ms", "3600000", "Largest allowed forward gap between record and broker time.", atLeast(0), syn("log.message.timestamp.after.max.ms", 1)),
	long("message.timestamp.before.max.ms", maxLong, "Largest allowed backward gap between record and broker time.", atLeast(0), syn("log.message.timestamp.before.max.ms", 1)),
	str("message.timestamp.type", "CreateTime", "CreateTime or LogAppendTime.", enum("CreateTime", "LogAppendTime"), syn("log.message.timestamp.type", 1)),
	double("min.cleanable.dirty.ratio", "0.5", "Compaction starts when the uncompacted bytes are at least this fraction of the log's closed segments.", between(0, 1), syn("log.cleaner.min.cleanable.ratio", 1)),
	long("min.compaction.lag.ms", "0", "Minimum time a record stays uncompacted (segments holding newer records wait).", atLeast(0), syn("log.cleaner.min.compaction.lag.ms", 1)),
	integer("min.insync.replicas", "1", "Minimum in-sync replicas for acks=all: with fewer in the partition's ISR, an acks=all produce gets NOT_ENOUGH_REPLICAS (retriable) and nothing is appended, as on Kafka. A single broker is one in-sync replica.", atLeast(1), syn("min.insync.replicas", 1)),
	boolean("preallocate", "false", "Accepted for compatibility and ignored; see log.preallocate.", syn("log.preallocate", 1)),
	long("retention.bytes", "-1", "With cleanup.policy delete: the oldest segments are deleted while the partition would still hold this many bytes without them; -1 = no limit. The partition stays below retention.bytes plus one segment.", atLeast(-1), syn("log.retention.bytes", 1)),
	long("retention.ms", "604800000", "With cleanup.policy delete: a segment is deleted once its newest record's timestamp is older than this; -1 = forever. Checked every log.retention.check.interval.ms.", atLeast(-1), syn("log.retention.ms", 1, "log.retention.minutes", msPerMinute, "log.retention.hours", msPerHour)),
	integer("segment.bytes", "1073741824", "Segment size at which the active segment rolls.", atLeast(14), syn("log.segment.bytes", 1)),
	integer("segment.index.bytes", "10485760", "Maximum offset index size.", atLeast(4), syn("log.index.size.max.bytes", 1)),
	long("segment.jitter.ms", "0", "Accepted for compatibility.", atLeast(0), syn("log.roll.jitter.ms", 1, "log.roll.jitter.hours", msPerHour)),
	long("segment.ms", "604800000", "Time after which the active segment rolls.", atLeast(1), syn("log.roll.ms", 1, "log.roll.hours", msPerHour)),
	boolean("unclean.leader.election.enable", "false", "Cluster mode: when no in-sync replica of a partition is live, elect its first live replica anyway (records the old leader acknowledged may be lost) instead of leaving the partition offline until one returns. Single node: unused.", syn("unclean.leader.election.enable", 1)),
	boolean("message.downconversion.enable", "true", "Accepted for compatibility; Gregor stores only magic 2.", syn("log.message.downconversion.enable", 1)),
})

var _ = math.MaxInt64

// The authorizer class names authorizer.class.name takes: Kafka's KRaft
// and ZooKeeper ones, both served by Gregor's built-in authorizer.
const (
	StandardAuthorizer = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
	AclAuthorizer      = "kafka.security.authorizer.AclAuthorizer"
)

// validVoters checks controller.quorum.voters.
func validVoters(v string) error {
	_, err := ParseVoters(v)
	return err
}

// Voters returns controller.quorum.voters by node ID (nil when empty).
func (c *BrokerConfig) Voters() (map[int32]string, error) {
	return ParseVoters(c.String("controller.quorum.voters"))
}

// ParseVoters parses controller.quorum.voters: id@host:port entries
// separated by commas, each ID once. Empty: nil.
func ParseVoters(v string) (map[int32]string, error) {
	var out map[int32]string
	for _, e := range SplitList(v) {
		id, addr, ok := strings.Cut(e, "@")
		n, err := strconv.ParseInt(id, 10, 32)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not of the form id@host:port", e)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("%q: %v", e, err)
		}
		if out == nil {
			out = map[int32]string{}
		}
		if _, dup := out[int32(n)]; dup {
			return nil, fmt.Errorf("voter %d named twice", n)
		}
		out[int32(n)] = addr
	}
	return out, nil
}

// validPrincipals checks super.users.
func validPrincipals(v string) error {
	_, err := Principals(v)
	return err
}

// Principals parses a list of principals separated by semicolons
// (super.users): each Type:name, as User:alice.
func Principals(v string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(v, ";") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if typ, name, ok := strings.Cut(p, ":"); !ok || typ == "" || name == "" {
			return nil, fmt.Errorf("%q is not of the form User:name", p)
		}
		out = append(out, p)
	}
	return out, nil
}
