package fuzz

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
)

// fuzzDir is this process's directory for the damage targets' segments,
// in /dev/shm like their default. The fuzz coordinator stops a worker at
// -fuzztime's end with SIGINT, then SIGKILL, if it does not finish its
// input within a second (a loaded machine): the input's cleanups never run,
// and a segment named in /dev/shm itself would stay there. In a directory
// named by the worker's PID, the next fuzz process removes it
// (removeStaleFuzzDirs), and so does scripts/fuzz.sh after each target.
var fuzzDir = filepath.Join("/dev/shm", "shmring-fuzz-"+strconv.Itoa(os.Getpid()))

func TestMain(m *testing.M) {
	removeStaleFuzzDirs()
	if err := os.Mkdir(fuzzDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		fmt.Fprintln(os.Stderr, "fuzz:", err)
		os.Exit(2)
	}
	testutil.MainThen(m, func() error {
		left, _ := os.ReadDir(fuzzDir)
		_ = os.RemoveAll(fuzzDir)
		if len(left) > 0 {
			return fmt.Errorf("tests left %d file(s) in %s", len(left), fuzzDir)
		}
		return nil
	})
}

// removeStaleFuzzDirs removes the directories of fuzz processes that are
// gone (a worker stopped mid-input), never a live one's.
func removeStaleFuzzDirs() {
	dirs, _ := filepath.Glob("/dev/shm/shmring-fuzz-*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "shmring-fuzz-"))
		if err == nil && pid != os.Getpid() && errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}

// The damage targets, one per ring kind, so that each kind gets its own
// fuzzing time (scripts/fuzz.sh runs every target for FUZZTIME): a single
// target choosing the kind from its input would spend its time where the
// coverage it finds first happens to be. Timestamps and sequences come
// from the input.
//
// Each input writes some messages through the real producer and consumer
// of a real segment, applies 8-byte writes to the ring's control block and
// producer slot table (a hostile co-tenant changing single words of a live
// segment), and then runs every operation, on the producer and consumer
// already open and on new ones: write, claim and commit or abort, batch,
// read, Peek, Stats, Doctor, and Doctor's repair (the consumer's recovery
// of dead reservations). Each returns data or an error; a panic or a hang
// (a watchdog dumps the goroutines and panics after 30 s) is a crasher.
// Delivered messages are never longer than the maximum, and, unless a
// patch hit a word that moves what the consumer reads (a position, the
// zeroing mark, the release lock, an intent, a slot's PID or start time,
// the descriptor), each is a message that was written.

func FuzzDamageSPSC(f *testing.F) { fuzzDamage(f, "spsc") }

func FuzzDamageMPSC(f *testing.F) { fuzzDamage(f, "mpsc") }

func FuzzDamageHeaderCommit(f *testing.F) { fuzzDamage(f, "header-commit") }

func FuzzDamageDropOldestSPSC(f *testing.F) { fuzzDamage(f, "drop-oldest-spsc") }

func FuzzDamageDropOldestMPSC(f *testing.F) { fuzzDamage(f, "drop-oldest-mpsc") }

// Control-block words whose damage moves what the consumer reads, so that
// it may deliver bytes that were never a message: the descriptor, the two
// positions, the zeroing mark, the release lock (region offsets).
var steering = [][2]uint64{{0, 64}, {128, 136}, {256, 264}, {552, 560}, {904, 912}}

// damagePatch is one seed patch: value v at region offset off.
func damagePatch(off uint16, v uint64) []byte { return patch(off, v) }

func fuzzDamage(f *testing.F, kind string) {
	mpsc := kind == "mpsc" || kind == "drop-oldest-mpsc"
	// Seeds: the damage issue 12 found, for every kind (a patch meant for
	// another kind is damage all the same).
	seeds := [][]byte{
		nil,
		damagePatch(128, 1<<40),           // producer position far ahead (defect 2)
		damagePatch(128, 3),               // producer position unaligned (defect 4, MPSC fast path)
		damagePatch(256, 3),               // consumer position unaligned (defect 4, resume, reclaim)
		damagePatch(256, 1<<20),           // consumer position far ahead
		damagePatch(256, 4096-8),          // header commit: consumer capacity-8 ahead (defect 3)
		damagePatch(552, 12),              // zeroing mark unaligned
		damagePatch(904, 2),               // release lock held by slot 1
		damagePatch(904, 1<<32|5),         // release lock: no such holder
		damagePatch(4096+24, 5),           // slot 0 intent position unaligned
		damagePatch(4096+32, 1<<30),       // slot 0 intent length huge
		damagePatch(4096+128+24, 64),      // slot 1 intent
		damagePatch(1024, 8),              // window narrower than any record
		damagePatch(1032, 1),              // pressure high level
		damagePatch(4096+104, ^uint64(0)), // slot 0's delivered sequence
		damagePatch(560, ^uint64(0)),      // SPSC delivered sequence
		append(damagePatch(128, 512), damagePatch(256, 256)...),
	}
	for i, s := range seeds {
		f.Add(byte(i), byte(i*7), s)
		if mpsc {
			f.Add(byte(i)|3, byte(i*11+3), s)
		}
	}
	f.Fuzz(func(t *testing.T, extras, writes byte, patches []byte) {
		// A crasher kills the worker before t's cleanups run: remove the
		// segment first (the panic goes on with its stack intact).
		name := testutil.Name(t)
		remove := func() { _ = os.Remove(filepath.Join(fuzzDir, name)) }
		t.Cleanup(remove)
		watchdog := time.AfterFunc(30*time.Second, func() {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			fmt.Fprintf(os.Stderr, "%s\n", buf[:n])
			remove()
			panic(fmt.Sprintf("fuzzDamage(%s): an input ran for 30 s (a hang); goroutines above", kind))
		})
		defer watchdog.Stop()
		defer func() {
			if p := recover(); p != nil {
				remove()
				panic(p)
			}
		}()
		runDamage(t, name, kind, extras, writes, patches)
	})
}

// allowed reports whether err is an outcome of an operation on a damaged
// ring: nothing, damage found, or an ordinary refusal.
func allowed(err error) bool {
	for _, e := range []error{ipc.ErrCorrupt, ipc.ErrFull, ipc.ErrTooLarge, ipc.ErrBusy, ipc.ErrIncompatible, ring.ErrClaimPending, ring.ErrNoClaim} {
		if errors.Is(err, e) {
			return true
		}
	}
	return err == nil
}

// damageMsg returns message k: its bytes are all >= 0xc0, so that no
// 8-byte word of a payload reads as a valid record header (reserved bits
// set): a consumer misled into a payload refuses it instead of delivering
// garbage that looks like a message.
func damageMsg(k int) []byte {
	m := make([]byte, (k*37)%97)
	for i := range m {
		m[i] = 0xc0 | byte(k+i)&0x3f
	}
	return m
}

func runDamage(t *testing.T, name, kind string, extras, writes byte, patches []byte) {
	mpsc := kind == "mpsc" || kind == "drop-oldest-mpsc"
	cfg := ipc.Config{Capacity: 1 << 10, MaxMessage: 96}
	switch kind {
	case "mpsc":
		cfg.Kind, cfg.Producers = ipc.MPSC, 2
	case "drop-oldest-mpsc":
		cfg.Kind, cfg.Producers, cfg.DropOldest = ipc.MPSC, 2, true
	case "header-commit":
		cfg.HeaderCommit = true
	case "drop-oldest-spsc":
		cfg.DropOldest = true
	}
	cfg.Timestamps = extras&1 != 0
	cfg.Sequences = extras&2 != 0
	r, err := ipc.Create(name, cfg, ipc.WithDir(fuzzDir))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st, err := r.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// Producers never wait: Drop, or DropOldest where the ring has it.
	full := ipc.Drop
	if st.DropOldest {
		full = ipc.DropOldest
	}
	maxMsg := st.MaxMessage
	ctx := context.Background()

	written := map[string]bool{"0123456789": true} // the MPSC claim left open
	next := 0
	msg := func() []byte {
		m := damageMsg(next)
		next++
		return m
	}
	check := func(what string, err error) {
		t.Helper()
		if !allowed(err) {
			t.Fatalf("%s: unexpected error %v", what, err)
		}
	}
	steered := false
	deliver := func(m []byte) {
		if uint64(len(m)) > maxMsg {
			t.Fatalf("delivered %d bytes, maximum %d", len(m), maxMsg)
		}
		if !steered && !written[string(m)] {
			t.Fatalf("delivered %x, which was never written, and no patch moved the consumer", m)
		}
	}

	// Producer operations, each bounded: Drop (or DropOldest) never waits.
	produce := func(p *ipc.Producer, n int) {
		for i := 0; i < n; i++ {
			switch i % 4 {
			case 0, 1:
				m := msg()
				if err := p.Write(ctx, m); err == nil {
					written[string(m)] = true
				} else {
					check("write", err)
				}
			case 2:
				batch := [][]byte{msg(), msg(), msg()}
				k, err := p.WriteBatch(ctx, batch)
				check("batch", err)
				for _, m := range batch[:k] {
					written[string(m)] = true
				}
			case 3:
				m := msg()
				b, err := p.Claim(ctx, len(m))
				check("claim", err)
				if err != nil {
					break
				}
				copy(b, m)
				if i%8 == 3 {
					check("abort", p.Abort())
					break
				}
				short := len(m) / 2
				if err := p.Commit(short); err == nil {
					written[string(m[:short])] = true
				} else {
					check("commit", err)
				}
			}
		}
	}
	consume := func(c *ipc.Consumer, rounds int) {
		for i := 0; i < rounds; i++ {
			n, err := c.TryRead(1+i%5, deliver)
			check("read", err)
			if err != nil || n == 0 {
				return
			}
		}
	}

	p, err := r.Producer(&ipc.ProducerConfig{Full: full})
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Consumer(nil)
	if err != nil {
		t.Fatal(err)
	}
	produce(p, int(writes%24))
	consume(c, int(writes>>5))
	var other *ipc.Producer
	otherClaim := 0 // the size of other's claim left open
	if mpsc {
		// A second producer with its claim outstanding: a reservation the
		// consumer must wait for while the producer lives.
		if other, err = r.Producer(&ipc.ProducerConfig{Full: full}); err != nil {
			t.Fatal(err)
		}
		produce(other, int(writes>>4)%4)
		if b, err := other.Claim(ctx, 10); err == nil {
			otherClaim = copy(b, "0123456789")
		}
	}

	// The damage: 8-byte writes to the control block and the slot table,
	// through a second mapping of the segment (another process's view).
	seg, err := shm.Open(r.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	body := seg.Body()
	area := uint64(ring.ControlSize)
	if mpsc {
		area += uint64(st.Slots) * ring.LineSize
	}
	for ; len(patches) >= 10; patches = patches[10:] {
		off := uint64(binary.LittleEndian.Uint16(patches)) % area &^ 7
		copy(body[off:off+8], patches[2:10])
		for _, s := range steering {
			steered = steered || off >= s[0] && off < s[1]
		}
		if off >= ring.SlotsOffset && mpsc {
			if w := (off - ring.SlotsOffset) % ring.LineSize; w < 16 || w == 24 || w == 32 {
				// An intent, which recovery pads by, or the PID and start
				// time that say whether the holder lives: recovery may skip
				// a live producer's reservation, which it then commits
				// into space the ring has reused.
				steered = true
			}
		}
	}
	// A policy override to a waiting policy makes Write, Claim and
	// WriteBatch wait for room, as an operator asked, which a fuzz input
	// running both sides on one goroutine cannot give them: clear it.
	clear(body[896:904])
	binary.LittleEndian.PutUint32(body[60:], crc32.Checksum(body[:60], crc32.MakeTable(crc32.Castagnoli)))

	// Every operation on the damaged ring: the producers and the consumer
	// already open, inspection, then new ones on a new view.
	produce(p, 12)
	if other != nil {
		_ = other.Commit(otherClaim) // the whole claim (without one: an error, ignored)
		produce(other, 4)
	}
	consume(c, 40)
	inspect := func(r *ipc.Ring) {
		_, err := r.Stats()
		check("stats", err)
		recs, err := ops.Peek(r, 1<<12)
		check("peek", err)
		for _, rec := range recs {
			if uint64(len(rec.Data)) > maxMsg {
				t.Fatalf("peek: a payload of %d bytes, maximum %d", len(rec.Data), maxMsg)
			}
		}
		_, err = ops.Doctor(r, false)
		check("doctor", err)
	}
	inspect(r)
	check("close producer", p.Close())
	if other != nil {
		check("close producer", other.Close())
	}
	check("close consumer", c.Close())

	r2, err := ipc.Open(r.Path())
	if err != nil {
		check("open", err) // the descriptor was damaged
		return
	}
	defer r2.Close()
	// The descriptor may have been rewritten (flags, maximum message
	// included): ask the new view. Stats' creation parameters come from
	// the descriptor Open validated, filled in whatever else it reports
	// (only a file truncated under the mapping, which nothing here does,
	// would leave them out).
	st2, err := r2.Stats()
	check("stats", err)
	maxMsg = st2.MaxMessage
	full = ipc.Drop
	if st2.DropOldest {
		full = ipc.DropOldest
	}
	if p2, err := r2.Producer(&ipc.ProducerConfig{Full: full}); err == nil {
		produce(p2, 12)
		check("close producer", p2.Close())
	} else {
		check("new producer", err)
	}
	// A new consumer reads what it can and closes; failed names the
	// check of an error opening it.
	newConsumer := func(failed string) {
		if c, err := r2.Consumer(nil); err == nil {
			consume(c, 40)
			check("close consumer", c.Close())
		} else {
			check(failed, err)
		}
	}
	newConsumer("new consumer")
	inspect(r2)
	// Recovery: every producer is gone; Doctor's repair takes the
	// consumer role and skips dead reservations.
	_, err = ops.Doctor(r2, true)
	check("repair", err)
	newConsumer("consumer after repair")
	inspect(r2)
}
