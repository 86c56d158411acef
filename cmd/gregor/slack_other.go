//go:build !linux

package main

// setTimerSlack is Linux only (prctl PR_SET_TIMERSLACK).
func setTimerSlack(ns int64) error { return nil }
