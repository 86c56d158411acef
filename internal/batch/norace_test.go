//go:build !race

package batch

// raceEnabled is set under -race, where sync.Pool drops items at random, so
// allocation counts of pooled paths are not meaningful.
const raceEnabled = false
