package agent

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/orphand/orphand/ipc"
)

func TestDecodeRequest(t *testing.T) {
	r, e := decodeRequest([]byte(` {"op":"register","id":"a","pid":42,"grace_ms":0,"signal":"TERM","unknown":[1]} `))
	if e != nil || r.Op != "register" || string(r.ID) != `"a"` || r.Pid != 42 || r.GraceMS == nil || *r.GraceMS != 0 {
		t.Fatalf("%+v %v", r, e)
	}
	if _, e := decodeRequest([]byte(" \t")); e != errBlankLine {
		t.Fatalf("blank: %v", e)
	}
	r, e = decodeRequest([]byte(`{"op":"hello","id":null}`))
	if e != nil || r.ID != nil {
		t.Fatalf("null id: %+v %v", r, e)
	}
	_, e = decodeRequest([]byte(`{"op":"kill","kill":"x"}`))
	if e == nil || !strings.Contains(e.Message, `"kill"`) {
		t.Fatalf("type error message: %v", e)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"op":"hello","id":1}`))
	f.Add([]byte(`{"op":"watch","pid":1,"kill":[2,3],"grace_ms":5,"id":{"x":[]}}`))
	f.Add([]byte(`{"id":"a","op":1}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, line []byte) {
		req, e := decodeRequest(line)
		if e == nil && req.Op == "" {
			t.Fatal("accepted a request without op")
		}
		if len(req.ID) > 0 && !json.Valid(req.ID) {
			t.Fatalf("id %q would be echoed as invalid JSON", req.ID)
		}
		// The response that echoes the id must encode.
		if _, err := json.Marshal(ipc.Response{ID: req.ID, Error: e}); err != nil {
			t.Fatalf("response does not encode: %v", err)
		}
	})
}

// Pid numbers no process can have are refused before any system call: the
// kernel would read 2^32+1 as pid 1.
func TestDecodeRefusesImpossiblePids(t *testing.T) {
	for _, line := range []string{
		`{"op":"register","pid":4294967297}`,
		`{"op":"register","pid":-1}`,
		`{"op":"watch","pid":5,"kill":[4194305]}`,
		`{"op":"watch","pid":5,"kill":[6,-7]}`,
	} {
		if _, e := decodeRequest([]byte(line)); e == nil || e.Code != ipc.CodeBadRequest {
			t.Errorf("%s: %v, want bad_request", line, e)
		}
	}
	if _, e := decodeRequest([]byte(`{"op":"watch","pid":4194304,"kill":[1,0]}`)); e != nil {
		t.Errorf("the largest pid: %v", e)
	}
}
