package group

import "unicode/utf16"

// javaStringHashCode is Java's String.hashCode: s[0]*31^(n-1) + … +
// s[n-1] over UTF-16 code units, in int32 arithmetic. Kafka decodes
// group IDs as UTF-8 (invalid bytes become U+FFFD, as Go's []rune
// conversion does).
func javaStringHashCode(s string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return h
}

// PartitionFor returns the __consumer_offsets partition of a group:
// Kafka's Utils.abs(groupId.hashCode()) % n, where Utils.abs maps
// Integer.MIN_VALUE to 0.
func PartitionFor(groupID string, n int32) int32 {
	h := javaStringHashCode(groupID)
	if h == -1<<31 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % n
}
