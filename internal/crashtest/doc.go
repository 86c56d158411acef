// Package crashtest holds Gregor's crash tests: no code, only tests.
//
// TestProcessCrash builds the gregor binary, runs `gregor serve` and
// SIGKILLs it at random moments while idempotent acks=all producers
// write, restarting it on the same data directory and port each time.
// The in-process tests run brokers (package ktest) on vfs.MemFS and
// simulate power loss, where only synced bytes survive, torn tails,
// process kills, a power loss or kill while the reboot recovers, and
// flipped bits. Each ends by reading everything back and checking that
// every acknowledged record is there exactly once, at the offset it was
// acknowledged with, in order.
//
// Knobs (environment): GREGOR_CRASH_SEED replays a run's random choices;
// GREGOR_CRASH_CYCLES sets the number of kills or power losses for a
// longer soak; GREGOR_CRASH_PARTITIONS the partitions of the topic
// TestProcessCrash and TestPowerLoss write (default 64, so that small
// appends go through the journal); GREGOR_CRASH_RACE=0/1 builds the
// binary without/with the race detector (default: as the test binary);
// GREGOR_CRASH_KEEP=DIR
// keeps TestProcessCrash's data directory and broker log in DIR.
package crashtest
