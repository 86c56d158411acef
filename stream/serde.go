package stream

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// Serde turns values of T into record keys or values and back. Decode
// receives nil for a null key or value; the built-in serdes decode it
// to T's zero value. Decode must return an error, never panic, on
// bytes it cannot read.
type Serde[T any] interface {
	Encode(T) ([]byte, error)
	Decode([]byte) (T, error)
}

// SerdeFuncs makes a Serde of two functions.
func SerdeFuncs[T any](encode func(T) ([]byte, error), decode func([]byte) (T, error)) Serde[T] {
	return funcSerde[T]{encode, decode}
}

type funcSerde[T any] struct {
	enc func(T) ([]byte, error)
	dec func([]byte) (T, error)
}

func (s funcSerde[T]) Encode(v T) ([]byte, error) { return s.enc(v) }
func (s funcSerde[T]) Decode(b []byte) (T, error) { return s.dec(b) }

// String is UTF-8 text, like Kafka's StringSerde (bytes are not
// validated).
func String() Serde[string] { return stringSerde{} }

type stringSerde struct{}

func (stringSerde) Encode(s string) ([]byte, error) { return []byte(s), nil }
func (stringSerde) Decode(b []byte) (string, error) { return string(b), nil }

// Bytes passes bytes through unchanged.
func Bytes() Serde[[]byte] { return bytesSerde{} }

type bytesSerde struct{}

func (bytesSerde) Encode(b []byte) ([]byte, error) { return b, nil }
func (bytesSerde) Decode(b []byte) ([]byte, error) { return b, nil }

// Int64 is a big-endian 8-byte integer, Kafka's LongSerde, so Java and
// Kafka Streams applications read what it writes. Null decodes to 0;
// any length other than 0 or 8 is an error.
func Int64() Serde[int64] { return int64Serde{} }

type int64Serde struct{}

func (int64Serde) Encode(v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(v)), nil
}

func (int64Serde) Decode(b []byte) (int64, error) {
	switch len(b) {
	case 0:
		return 0, nil
	case 8:
		return int64(binary.BigEndian.Uint64(b)), nil
	}
	return 0, fmt.Errorf("stream: int64 needs 8 bytes, got %d", len(b))
}

// JSON encodes T with encoding/json. Null decodes to T's zero value.
func JSON[T any]() Serde[T] { return jsonSerde[T]{} }

type jsonSerde[T any] struct{}

func (jsonSerde[T]) Encode(v T) ([]byte, error) { return json.Marshal(v) }

func (jsonSerde[T]) Decode(b []byte) (T, error) {
	var v T
	if b == nil {
		return v, nil
	}
	err := json.Unmarshal(b, &v)
	return v, err
}
