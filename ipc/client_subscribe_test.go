package ipc

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSubscribe(t *testing.T) {
	f := newFakeAgent(t, func(req Request, _ []byte) ([]string, bool) {
		if req.Op != OpSubscribe || req.Group != "abc" {
			t.Errorf("request %+v, want subscribe to abc", req)
		}
		return []string{
			okReply(req),
			`{"event":"registered","group":"abc","time":"2026-11-21T10:00:00Z"}`,
			`{"kind":"from-the-future"}`, // unknown lines are skipped
			`{"event":"killed","group":"abc","time":"2026-11-21T10:00:01Z","killed":4,"ms":2.5}`,
			`{"ok":false,"error":{"code":"limit_exceeded","message":"subscriber too slow"}}`,
		}, false
	})
	c := dial(t, f.path)
	events, err := c.Subscribe(context.Background(), "abc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(context.Background()); !errors.Is(err, ErrStreaming) {
		t.Errorf("Status() on a subscribed client = %v, want ErrStreaming", err)
	}
	var got []Event
	var end error
	for ev, err := range events {
		if err != nil {
			end = err
			break
		}
		got = append(got, ev)
	}
	if len(got) != 2 || got[0].Event != EventRegistered || got[1].Event != EventKilled ||
		got[1].Killed == nil || *got[1].Killed != 4 || got[1].Millis == nil || *got[1].Millis != 2.5 {
		t.Fatalf("events = %+v", got)
	}
	var e *Error
	if !errors.As(end, &e) || e.Code != CodeLimitExceeded {
		t.Fatalf("stream ended with %v, want the agent's error", end)
	}
	for _, err := range events {
		if err == nil {
			t.Error("a second range over the iterator yielded an event")
		}
	}
}

func TestSubscribeEndsWithContext(t *testing.T) {
	f := newFakeAgent(t, func(req Request, _ []byte) ([]string, bool) {
		return []string{okReply(req)}, false // then silence
	})
	c := dial(t, f.path)
	ctx, cancel := context.WithCancel(context.Background())
	events, err := c.Subscribe(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(20*time.Millisecond, cancel)
	n := 0
	for _, err := range events {
		n++
		if !errors.Is(err, context.Canceled) {
			t.Errorf("yielded %v, want context.Canceled", err)
		}
	}
	if n != 1 {
		t.Errorf("iterator yielded %d times, want once (the context's error)", n)
	}
}

func TestSubscribeRefused(t *testing.T) {
	f := newFakeAgent(t, func(req Request, _ []byte) ([]string, bool) {
		return []string{reply(req, Response{Error: &Error{Code: CodeNotFound, Message: "no group zz"}})}, false
	})
	c := dial(t, f.path)
	_, err := c.Subscribe(context.Background(), "zz")
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeNotFound {
		t.Fatalf("Subscribe() = %v, want not_found", err)
	}
	// A refused subscription leaves the connection usable for requests.
	if _, err := c.Subscribe(context.Background(), "zz"); !errors.As(err, &e) {
		t.Fatalf("second Subscribe() = %v", err)
	}
}

func TestSubscribeAgentHangsUp(t *testing.T) {
	f := newFakeAgent(t, func(req Request, _ []byte) ([]string, bool) {
		return []string{okReply(req), `{"event":"released","group":"g","time":"2026-11-21T10:00:00Z"}`}, true
	})
	c := dial(t, f.path)
	events, err := c.Subscribe(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var last error
	n := 0
	for _, err := range events {
		n++
		last = err
	}
	if n != 2 || !errors.Is(last, ErrDisconnected) {
		t.Fatalf("got %d yields ending with %v, want an event then ErrDisconnected", n, last)
	}
}
