package natsembed

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestProblems: the logger keeps the latest keepProblems warnings and
// errors, drops notices, and Explain appends the last three to an error
// that errors.Is still sees through.
func TestProblems(t *testing.T) {
	s := &Server{log: &problems{}}
	base := errors.New("base")
	if got := s.Explain(base); got != base {
		t.Fatalf("Explain with nothing logged = %v, want the error itself", got)
	}
	if s.Explain(nil) != nil {
		t.Fatal("Explain(nil) is not nil")
	}
	s.log.Noticef("notice %d", 1)
	s.log.Debugf("debug")
	s.log.Tracef("trace")
	for i := range keepProblems + 4 {
		s.log.Warnf("w%d", i)
	}
	s.log.Errorf("store failed: %s", "ENOSPC")
	got := s.Problems()
	if len(got) != keepProblems {
		t.Fatalf("kept %d lines, want %d: %q", len(got), keepProblems, got)
	}
	if got[0] != "warning: w5" || got[len(got)-1] != "error: store failed: ENOSPC" {
		t.Fatalf("first, last = %q, %q", got[0], got[len(got)-1])
	}
	err := s.Explain(fmt.Errorf("create: %w", base))
	if !errors.Is(err, base) {
		t.Fatalf("errors.Is lost the cause: %v", err)
	}
	want := "warning: w18; warning: w19; error: store failed: ENOSPC)"
	if !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("Explain = %q, want it to end %q", err, want)
	}
}

// TestHoldStreamsDir: with the streams directory held, deleting the only
// other file stream and creating the next at once never fails (without the
// hold, nats-server's delete races the next creation: see HoldStreamsDir).
// Idempotent across a restart.
func TestHoldStreamsDir(t *testing.T) {
	s, err := New(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	if err := s.HoldStreamsDir(); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := s.HoldStreamsDir(); err != nil {
		t.Fatalf("a second hold, after a restart: %v", err)
	}
	nc, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 200 {
		name := fmt.Sprintf("S%d", i)
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"s"}, Storage: jetstream.FileStorage}); err != nil {
			t.Fatalf("create %s: %v", name, s.Explain(err))
		}
		if err := js.DeleteStream(ctx, name); err != nil {
			t.Fatalf("delete %s: %v", name, err)
		}
	}
}
