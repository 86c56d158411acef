package stream

import "github.com/twmb/franz-go/pkg/kgo"

// SetHookBeforeCommit makes a run f, with its main client, before each
// commit. Tests use it to freeze an instance in the middle of a
// transaction.
func SetHookBeforeCommit(a *App, f func(*kgo.Client)) { a.hookBeforeCommit = f }
