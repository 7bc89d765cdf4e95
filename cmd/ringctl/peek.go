package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
)

// peekRecord is one entry of peek's output: a message, or the uncommitted
// MPSC reservation where the walk stopped.
type peekRecord struct {
	Position uint64 `json:"position"`
	Slot     int    `json:"slot"`
	Length   int    `json:"length"`
	Hex      string `json:"hex"`
	Text     string `json:"text"`
	Pending  bool   `json:"uncommitted,omitempty"`
}

// runPeek shows pending messages without consuming them.
func runPeek(sio stdio, args []string) error {
	fs := newFlags(sio, "peek")
	var loc location
	loc.register(fs)
	n := fs.Int("n", 10, "show at most N messages")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	if *n < 1 {
		return usagef("-n must be at least 1")
	}
	r, err := ipc.Open(pos[0], append(loc.options(), ipc.WithReadOnly())...)
	if err != nil {
		return err
	}
	defer r.Close()
	recs, perr := ops.Peek(r, *n)
	out := []peekRecord{}
	for _, rec := range recs {
		out = append(out, peekRecord{Position: rec.Start, Slot: rec.Slot, Length: len(rec.Data), Hex: hex.EncodeToString(rec.Data),
			Text: printable(rec.Data), Pending: rec.Uncommitted})
	}
	if *asJSON {
		enc := json.NewEncoder(sio.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
		return perr
	}
	for _, pr := range out {
		if pr.Pending {
			fmt.Fprintf(sio.out, "@%d slot %d: uncommitted reservation (the walk stops here)\n", pr.Position, pr.Slot)
			continue
		}
		fmt.Fprintf(sio.out, "@%d slot %d, %d bytes: %q\n", pr.Position, pr.Slot, pr.Length, pr.Text)
		for i := 0; i < len(pr.Hex); i += 64 {
			fmt.Fprintf(sio.out, "    %s\n", spaced(pr.Hex[i:min(i+64, len(pr.Hex))]))
		}
	}
	if len(out) == 0 && perr == nil {
		fmt.Fprintln(sio.out, "(no pending messages)")
	}
	return perr
}

// printable replaces bytes that are not printable ASCII with '.'.
func printable(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			s.WriteByte(c)
		} else {
			s.WriteByte('.')
		}
	}
	return s.String()
}

// spaced groups hex digits by byte pairs of four.
func spaced(h string) string {
	var s strings.Builder
	for i := 0; i < len(h); i += 8 {
		if i > 0 {
			s.WriteByte(' ')
		}
		s.WriteString(h[i:min(i+8, len(h))])
	}
	return s.String()
}
