package state

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzReadEntries feeds arbitrary bytes to the decoder of state files: it
// must not panic, must not report more valid bytes than it read, and every
// entry it returns must encode back to a line that decodes to itself.
func FuzzReadEntries(f *testing.F) {
	var seed []byte
	seed, _ = AppendEntry(seed, Entry{Header: &Header{Format: Format, Version: Version, Kind: KindJournal, Gen: 3}})
	seed, _ = AppendEntry(seed, Entry{ID: "0123456789ab", Record: json.RawMessage(`{"id":"0123456789ab","state":"active"}`)})
	seed, _ = AppendEntry(seed, Entry{ID: "0123456789ab", Delete: true})
	f.Add(seed)
	f.Add(seed[:len(seed)-5])
	f.Add([]byte("00000000 {}\n"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got []Entry
		st, err := ReadEntries(bytes.NewReader(data), func(e Entry) error {
			got = append(got, e)
			return nil
		})
		if err != nil {
			t.Fatalf("ReadEntries: %v", err)
		}
		if st.Valid > int64(len(data)) || st.Entries != len(got) {
			t.Fatalf("stats %+v for %d bytes and %d entries", st, len(data), len(got))
		}
		for _, e := range got {
			line, err := AppendEntry(nil, e)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", e, err)
			}
			var back []Entry
			if _, err := ReadEntries(bytes.NewReader(line), func(b Entry) error { back = append(back, b); return nil }); err != nil || len(back) != 1 {
				t.Fatalf("re-read %q: %v (%d entries)", line, err, len(back))
			}
			again, _ := AppendEntry(nil, back[0])
			if !bytes.Equal(again, line) {
				t.Fatalf("round trip changed the line:\n%q\n%q", line, again)
			}
		}
	})
}
