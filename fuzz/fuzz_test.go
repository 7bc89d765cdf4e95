package fuzz

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/shmring/shmring/internal/units"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
)

// FuzzSegmentHeader: any bytes and file size given to the header decoder
// give a header whose sizes add up and fit the file, or an error matching
// ErrCorrupt or ErrIncompatible; never a panic.
func FuzzSegmentHeader(f *testing.F) {
	good := goodHeader(f)
	f.Add(good, int64(len(good)+8192))
	f.Add(good[:100], int64(100))
	f.Add([]byte("SHMSEG\x00\x01"), int64(4096))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		h, err := shm.DecodeHeader(b, size)
		if err != nil {
			if !errors.Is(err, shm.ErrCorrupt) && !errors.Is(err, shm.ErrIncompatible) {
				t.Fatalf("error %v matches neither ErrCorrupt nor ErrIncompatible", err)
			}
			return
		}
		if h.TotalSize != shm.HeaderSize+h.BodySize || h.TotalSize != uint64(size) {
			t.Fatalf("accepted inconsistent sizes: %+v for a file of %d", h, size)
		}
	})
}

// goodHeader returns the header page of a real segment.
func goodHeader(tb testing.TB) []byte {
	dir := tb.TempDir()
	seg, err := shm.Create("h", 8192, nil, shm.Dir(dir))
	if err != nil {
		tb.Fatal(err)
	}
	defer seg.Close()
	other, err := shm.Open(seg.Path(), shm.ReadOnly())
	if err != nil {
		tb.Fatal(err)
	}
	defer other.Close()
	// The header page precedes the body in the mapping; read it from the file.
	b := make([]byte, shm.HeaderSize)
	copy(b, readFile(tb, seg.Path()))
	return b
}

// region makes a formatted ring region of the given kind; extras selects
// timestamps (bit 0), sequences (bit 1), overwrite (bit 2: drop-oldest,
// whose consumer reads by copy and release, under the release lock in MPSC)
// and header commit (bit 3: an SPSC consumer that polls headers).
func region(tb testing.TB, kind ring.Kind, extras ...byte) []byte {
	cfg := ring.Config{Kind: kind, Capacity: 1 << 10, MaxMessage: 96}
	if len(extras) > 0 {
		cfg.Timestamps, cfg.Sequences, cfg.Overwrite = extras[0]&1 != 0, extras[0]&2 != 0, extras[0]&4 != 0
		// bit 3: header commit (SPSC without overwrite only)
		cfg.HeaderCommit = extras[0]&8 != 0 && kind == ring.SPSC && !cfg.Overwrite
	}
	if kind == ring.MPSC {
		cfg.Slots = 2
	}
	size, err := ring.Size(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	r := make([]byte, size)
	if err := ring.Format(r, cfg); err != nil {
		tb.Fatal(err)
	}
	return r
}

// FuzzConsumer: a consumer reading a region whose control block and data
// another party has scribbled on. The input is a list of patches (offset,
// 8 bytes) applied to a ring holding a few records; the descriptor checksum
// is then recomputed so that the damage reaches the reading paths. Reading,
// recovering and inspecting must return data or ErrCorrupt, never panic,
// hang or deliver a record longer than the maximum; and while no patch
// touches the descriptor or the data area, every message delivered is one
// that was written, byte for byte, in order and at most once.
func FuzzConsumer(f *testing.F) {
	f.Add(false, byte(0), []byte{})
	f.Add(true, byte(3), []byte{})
	f.Add(false, byte(0), patch(128, 1<<40))                      // producer position far ahead
	f.Add(false, byte(0), patch(256, 4096))                       // consumer position ahead
	f.Add(false, byte(1), patch(4096, 0x0001_0000_0000_0100))     // header with a huge length
	f.Add(true, byte(2), patch(4096+4096, 0x0003_0005_0000_0010)) // a pending header naming slot 5
	f.Add(true, byte(3), patch(4096+24, 8))                       // a slot intent
	f.Add(true, byte(4), patch(904, 2))                           // drop-oldest: release lock held by slot 1
	f.Add(true, byte(4), patch(552, 4096))                        // drop-oldest: zeroing mark ahead
	f.Add(false, byte(4), patch(256, 64))                         // drop-oldest spsc: position moved
	f.Add(false, byte(8), patch(4096+200, 0x0001_0000_0000_0040)) // header commit: a stray header past the records
	f.Add(false, byte(9), patch(128, 8))                          // header commit: producer position behind
	f.Fuzz(func(t *testing.T, mpsc bool, extras byte, patches []byte) {
		kind := ring.SPSC
		if mpsc {
			kind = ring.MPSC
		}
		reg := region(t, kind, extras)
		r, err := ring.Attach(reg)
		if err != nil {
			t.Fatal(err)
		}
		var p *ring.Producer
		if mpsc {
			p, err = r.NewSlotProducer(0)
		} else {
			p, err = r.NewProducer()
		}
		if err != nil {
			t.Fatal(err)
		}
		var written [][]byte
		for i := 0; i < 9; i++ {
			m := bytes.Repeat([]byte{byte(i)}, 10*i)
			if p.TryWrite(m) == nil {
				written = append(written, m)
			}
		}
		// The descriptor (which Attach checks, and which says where the
		// payloads lie) and the data area: damage there may make any
		// bytes a message; elsewhere it must not.
		const descriptor = 64
		dataOff := uint64(len(reg)) - r.Capacity()
		strict := true
		for len(patches) >= 10 {
			off := uint64(binary.LittleEndian.Uint16(patches)) % uint64(len(reg)-8) &^ 7
			copy(reg[off:off+8], patches[2:10])
			patches = patches[10:]
			if off < descriptor || off+8 > dataOff {
				strict = false
			}
		}
		binary.LittleEndian.PutUint32(reg[60:], crc32.Checksum(reg[:60], crc32.MakeTable(crc32.Castagnoli)))
		r, err = ring.AttachWithLiveness(reg, allDead{}) // no producer runs: Recover may skip what it finds
		if err != nil {
			if !errors.Is(err, ring.ErrCorrupt) && !errors.Is(err, ring.ErrIncompatible) {
				t.Fatalf("attach: %v", err)
			}
			return
		}
		_ = r.Stats()
		for i := 0; i < r.Slots(); i++ {
			_ = r.Slot(i)
		}
		c, err := r.NewConsumer()
		if err != nil {
			if !errors.Is(err, ring.ErrCorrupt) {
				t.Fatalf("new consumer: %v", err)
			}
			return
		}
		next := 0 // written[next:] may still be delivered
		for i := 0; i < 64; i++ {
			n, err := c.ReadBatch(8, func(m []byte) {
				if uint64(len(m)) > r.MaxMessage() {
					t.Fatalf("delivered %d bytes, maximum %d", len(m), r.MaxMessage())
				}
				if !strict {
					return
				}
				for next < len(written) && !bytes.Equal(m, written[next]) {
					next++
				}
				if next == len(written) {
					t.Fatalf("delivered %q, which was not written (or not in this order, or twice): written %q", m, written)
				}
				next++
			})
			if err != nil {
				if !errors.Is(err, ring.ErrCorrupt) {
					t.Fatalf("read: %v", err)
				}
				return
			}
			if n == 0 {
				if !c.Blocked() {
					return
				}
				if _, err := c.Recover(); err != nil && !errors.Is(err, ring.ErrCorrupt) {
					t.Fatalf("recover: %v", err)
				}
			}
		}
	})
}

func patch(off uint16, v uint64) []byte {
	b := make([]byte, 10)
	binary.LittleEndian.PutUint16(b, off)
	binary.LittleEndian.PutUint64(b[2:], v)
	return b
}

// FuzzOps: a random sequence of writes, batch writes, claims, commits,
// aborts and batch reads through SPSC and MPSC rings, checked against a plain queue: every
// write accepted is read back once, in order, byte-exact.
func FuzzOps(f *testing.F) {
	f.Add(false, byte(0), []byte{1, 2, 3, 200, 17, 5, 90, 91, 92})
	f.Add(true, byte(3), []byte{0, 255, 128, 64, 32, 16, 8, 4, 2, 1})
	f.Add(true, byte(4), []byte{9, 200, 3, 77, 1, 2, 250, 251, 5, 6, 7})
	f.Add(false, byte(8), []byte{4, 90, 180, 3, 3, 250, 40, 41, 42, 7, 9, 200})
	f.Fuzz(func(t *testing.T, mpsc bool, extras byte, ops []byte) {
		kind := ring.SPSC
		if mpsc {
			kind = ring.MPSC
		}
		r, err := ring.Attach(region(t, kind, extras))
		if err != nil {
			t.Fatal(err)
		}
		var ps []*ring.Producer
		if mpsc {
			for i := 0; i < 2; i++ {
				p, err := r.NewSlotProducer(i)
				if err != nil {
					t.Fatal(err)
				}
				ps = append(ps, p)
			}
		} else {
			p, err := r.NewProducer()
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
		}
		c, err := r.NewConsumer()
		if err != nil {
			t.Fatal(err)
		}
		// The model is the ring's order: reservation order. A claim takes
		// its place when it is made; Commit fills it in, Abort removes it.
		var model []*[]byte
		// An MPSC claim blocks the consumer; keep at most one open and
		// commit or abort it on a later op.
		var claimed []byte
		var claimSlot *[]byte
		var claimer *ring.Producer
		var seq byte
		read := func(max int) {
			_, err := c.ReadBatch(max, func(m []byte) {
				if len(model) == 0 || !bytes.Equal(*model[0], m) {
					t.Fatalf("read %q, model head %q", m, head(model))
				}
				model = model[1:]
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, op := range ops {
			p := ps[int(op)%len(ps)]
			size := int(op) % 100
			msg := bytes.Repeat([]byte{seq}, size)
			switch {
			case claimer != nil && op%3 == 0:
				if op%2 == 0 {
					copy(claimed, msg)
					if err := claimer.CommitN(min(size, len(claimed))); err != nil {
						t.Fatal(err)
					}
					*claimSlot = bytes.Clone(claimed[:min(size, len(claimed))])
				} else {
					claimer.Abort()
					for i, m := range model {
						if m == claimSlot {
							model = append(model[:i], model[i+1:]...)
							break
						}
					}
				}
				claimer, seq = nil, seq+1
			case op < 100:
				if p == claimer {
					continue
				}
				err := p.TryWrite(msg)
				if err == nil {
					model = append(model, &msg)
					seq++
				} else if !errors.Is(err, ring.ErrFull) && !errors.Is(err, ring.ErrTooLarge) {
					t.Fatal(err)
				}
			case op < 140 && claimer == nil:
				b, err := p.Claim(size)
				if err == nil {
					copy(b, msg)
					claimed, claimer = b, p
					claimSlot = new([]byte)
					model = append(model, claimSlot)
				} else if !errors.Is(err, ring.ErrFull) {
					t.Fatal(err)
				}
			case op >= 140 && op < 170:
				if p == claimer {
					continue
				}
				// A batch: MPSC reserves it in runs.
				msgs := make([][]byte, int(op)%6+1)
				for i := range msgs {
					msgs[i] = bytes.Repeat([]byte{seq + byte(i)}, (size+37*i)%100)
				}
				n, err := p.WriteBatch(msgs)
				if err != nil && !errors.Is(err, ring.ErrFull) && !errors.Is(err, ring.ErrTooLarge) {
					t.Fatal(err)
				}
				for i := range msgs[:n] {
					model = append(model, &msgs[i])
				}
				seq += byte(len(msgs))
			default:
				read(int(op)%7 + 1)
			}
		}
		if claimer != nil {
			copy(claimed, bytes.Repeat([]byte{seq}, len(claimed)))
			if err := claimer.Commit(); err != nil {
				t.Fatal(err)
			}
			*claimSlot = bytes.Clone(claimed)
		}
		for len(model) > 0 {
			before := len(model)
			read(100)
			if len(model) == before {
				t.Fatalf("%d messages never arrive", len(model))
			}
		}
	})
}

func head(m []*[]byte) []byte {
	if len(m) == 0 {
		return nil
	}
	return *m[0]
}

// FuzzUnits: ringctl's size and duration parsers accept or refuse any
// string without panicking; a size they accept prints as something they
// read back to within the printed rounding; no duration is negative.
func FuzzUnits(f *testing.F) {
	for _, s := range []string{"64KiB", "1MiB", "1.5GiB", "10MB", "4096", "", "KiB", "2s", "0.5", "1m30s", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := units.ParseSize(s); err == nil {
			// FormatSize rounds to one decimal of its unit: reading it
			// back lands within 5% (and exactly below 1 KiB).
			out := units.FormatSize(v)
			back, err := units.ParseSize(strings.ReplaceAll(out, " ", ""))
			if err != nil {
				t.Fatalf("%q -> %d -> %q does not parse: %v", s, v, out, err)
			}
			diff := max(back, v) - min(back, v)
			if (v < 1024 && diff != 0) || diff > v/20 {
				t.Fatalf("%q -> %d -> %q -> %d", s, v, out, back)
			}
		}
		if d, err := units.ParseDuration(s); err == nil && d < 0 {
			t.Fatalf("%q parsed to a negative duration %v", s, d)
		}
	})
}

// allDead is the Liveness of a ring no process writes: every holder is dead.
type allDead struct{}

func (allDead) SlotAlive(int) bool  { return false }
func (allDead) ConsumerAlive() bool { return false }
