package raftnode

import (
	"context"
	"fmt"
	"log/slog"
)

// raftLogger adapts slog to raft.Logger. Raft's Info messages (votes,
// term changes) are chatty, so they go out at Debug; the Node logs leader
// changes itself at Info.
type raftLogger struct{ l *slog.Logger }

// log formats only what the handler takes.
func (r raftLogger) log(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if !r.l.Enabled(ctx, level) {
		return
	}
	if format == "" {
		r.l.Log(ctx, level, fmt.Sprint(v...))
	} else {
		r.l.Log(ctx, level, fmt.Sprintf(format, v...))
	}
}

func (r raftLogger) Debug(v ...any)                   { r.log(slog.LevelDebug, "", v) }
func (r raftLogger) Debugf(format string, v ...any)   { r.log(slog.LevelDebug, format, v) }
func (r raftLogger) Info(v ...any)                    { r.log(slog.LevelDebug, "", v) }
func (r raftLogger) Infof(format string, v ...any)    { r.log(slog.LevelDebug, format, v) }
func (r raftLogger) Warning(v ...any)                 { r.log(slog.LevelWarn, "", v) }
func (r raftLogger) Warningf(format string, v ...any) { r.log(slog.LevelWarn, format, v) }
func (r raftLogger) Error(v ...any)                   { r.log(slog.LevelError, "", v) }
func (r raftLogger) Errorf(format string, v ...any)   { r.log(slog.LevelError, format, v) }

// Fatal and Fatalf log and panic: raft calls them only on a broken
// invariant, and a library must not exit the process.
func (r raftLogger) Fatal(v ...any)                 { r.Panic(v...) }
func (r raftLogger) Fatalf(format string, v ...any) { r.Panicf(format, v...) }

func (r raftLogger) Panic(v ...any) {
	s := fmt.Sprint(v...)
	r.l.Error(s)
	panic(s)
}

func (r raftLogger) Panicf(format string, v ...any) {
	s := fmt.Sprintf(format, v...)
	r.l.Error(s)
	panic(s)
}
