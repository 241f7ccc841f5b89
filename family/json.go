package family

import (
	"encoding/json"
	"fmt"
)

// Typed helpers: values as JSON, so callers rarely touch bytes. JSON is
// what a Perl (JSON::PP), Python or shell child most easily speaks too.

// Send sends v as JSON under key (ToMaster).
func Send[T any](c *Child, key string, v T) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("family: encoding %q as JSON: %w", key, err)
	}
	return c.ToMaster(key, b)
}

// Push appends v as JSON to the queue key (PushToMaster).
func Push[T any](c *Child, key string, v T) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("family: encoding %q as JSON: %w", key, err)
	}
	return c.PushToMaster(key, b)
}

// Get decodes the last value child cid sent under key (FromCID). ok is
// false when there is none; err reports a value that is not a T.
func Get[T any](m *Master, cid int, key string) (v T, ok bool, err error) {
	b, ok := m.FromCID(cid, key)
	return decode[T](key, b, ok)
}

// GetByName is Get by child name (FromChild).
func GetByName[T any](m *Master, name, key string) (v T, ok bool, err error) {
	b, ok := m.FromChild(name, key)
	return decode[T](key, b, ok)
}

// Pop removes and decodes the oldest element of child cid's queue key
// (PopFromCID). The element is removed even when it does not decode.
func Pop[T any](m *Master, cid int, key string) (v T, ok bool, err error) {
	b, ok := m.PopFromCID(cid, key)
	return decode[T](key, b, ok)
}

// PopByName is Pop by child name (PopFromChild).
func PopByName[T any](m *Master, name, key string) (v T, ok bool, err error) {
	b, ok := m.PopFromChild(name, key)
	return decode[T](key, b, ok)
}

// PopAll removes and decodes every element of child cid's queue key,
// oldest first (PopAllFromCID). It stops at the first element that does
// not decode; the elements are removed either way.
func PopAll[T any](m *Master, cid int, key string) ([]T, error) {
	q := m.PopAllFromCID(cid, key)
	out := make([]T, 0, len(q))
	for _, b := range q {
		v, _, err := decode[T](key, b, true)
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

func decode[T any](key string, b []byte, ok bool) (T, bool, error) {
	var v T
	if !ok {
		return v, false, nil
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, true, fmt.Errorf("family: value %q is not JSON for %T: %w", key, v, err)
	}
	return v, true, nil
}
