package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
)

// peekRecord is one message in peek's output. ops.Peek's records carry
// no position and no uncommitted reservation (ipc.Record), so peek no
// longer prints either: the position field is gone from the JSON, and an
// MPSC walk that stops at a reservation ends without saying so.
type peekRecord struct {
	Slot   int    `json:"slot"`
	Length int    `json:"length"`
	Hex    string `json:"hex"`
	Text   string `json:"text"`
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
		out = append(out, peekRecord{Slot: rec.Slot, Length: len(rec.Data), Hex: hex.EncodeToString(rec.Data), Text: printable(rec.Data)})
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
		fmt.Fprintf(sio.out, "slot %d, %d bytes: %q\n", pr.Slot, pr.Length, pr.Text)
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
