//go:build !linux

package server

import (
	"syscall"

	"github.com/gregor-streaming/gregor/internal/wire"
)

const canSendfile = false

func sendFileSyscall(syscall.Conn, wire.SendFile, int64, int) (bool, error) { return false, nil }
