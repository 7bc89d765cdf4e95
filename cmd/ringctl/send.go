package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/shmring/shmring/internal/units"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/ops"
)

func runSend(sio stdio, args []string) error {
	fs := newFlags(sio, "send")
	var loc location
	loc.register(fs)
	policy := fs.String("policy", "hybrid", "when the ring is full: drop (count it and go on), drop-oldest (rings created --drop-oldest), or wait: hybrid, spin, yield, park, block (up to --timeout), backoff")
	var timeout units.DurationFlag
	fs.Var(&timeout, "timeout", "under a waiting policy, stop (exit 3) once a message has waited DUR for room while the ring is full (block: default 1s; others: no limit). This bounds a wait for a slow consumer; a missing one is --peer-timeout's")
	var peerTimeout units.DurationFlag
	fs.Var(&peerTimeout, "peer-timeout", "under a waiting policy, stop (exit 3) once the ring is full and no consumer has been attached for `DUR` (default 1s; 0: wait for one forever). Whichever of --timeout and this passes first stops send")
	id := fs.Int("id", -1, "mpsc: the producer slot to write as, numbered from 0 as ringctl stat shows slots (bridge in's --producer-id N is slot N-1; default: the first free one)")
	var rf routeFlags
	rf.register(fs)
	pos, err := parse(fs, args, -1)
	if err != nil {
		return err
	}
	pcfg, waits, limit, perr := sendPolicy(*policy)
	if errors.Is(perr, errUsage) {
		return perr
	}
	if peerTimeout.Given {
		if peerTimeout.Value < 0 {
			return usagef("--peer-timeout %v: want a duration, or 0 to wait for a consumer forever", peerTimeout.Value)
		}
		pcfg.Wait.PeerTimeout = peerWait(peerTimeout.Value)
	}
	if rf.rings != "" {
		if len(pos) != 0 {
			return usagef("--route names the rings; give no NAME (got %q)", pos)
		}
		if timeout.Given && timeout.Value <= 0 {
			return usagef("--timeout must be positive")
		}
		if timeout.Given {
			limit = timeout.Value
		} else if peerTimeout.Given && waits {
			limit = peerWait(peerTimeout.Value) // routeTimeout would cut the wait short
		}
		return runSendRoute(sio, loc, rf, pcfg, waits, limit, *id, perr)
	}
	if err := rf.single(); err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usagef("missing ring NAME (or --route R1,R2,...)")
	case len(pos) > 1:
		return usagef("want 1 argument(s), got %d: %q", len(pos), pos)
	}
	r, err := ipc.Open(pos[0], loc.options()...)
	if err != nil {
		return err
	}
	defer r.Close()
	if timeout.Given {
		if timeout.Value <= 0 {
			return usagef("--timeout must be positive")
		}
		limit = timeout.Value
	}
	if *id >= 0 {
		// --id is the slot, as stat shows it; ProducerConfig.ID is the
		// slot + 1 (0: the first free one), so ipc's errors would name
		// another number: say it here in the flag's terms.
		if err := checkSlot(r, *id); err != nil {
			return err
		}
		pcfg.ID = *id + 1
	}
	if perr != nil {
		return perr // overflow: refused where Producer refused it
	}
	if waits && limit == 0 {
		pcfg.Wait.Hook = blockOverride(r)
	}
	p, err := r.Producer(&pcfg)
	if err != nil {
		return err
	}
	defer p.Close()

	// Under a waiting policy the first timeout or dead peer ends the
	// command; drop and drop-oldest go on and count.
	in := bufio.NewReaderSize(sio.in, 64<<10)
	var line []byte
	var sent, dropped, tooLarge uint64
	var lastReason error
	for {
		chunk, err := in.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			line = append(line, chunk...) // a line longer than the buffer
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read stdin: %w", err)
		}
		if len(chunk) == 0 && len(line) == 0 && err != nil {
			break
		}
		msg := chunk
		if len(line) > 0 {
			line = append(line, chunk...)
			msg = line
		}
		msg = bytes.TrimSuffix(msg, []byte{'\n'})
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if limit > 0 {
			ctx, cancel = context.WithTimeout(ctx, limit)
		}
		werr := p.Write(ctx, msg)
		cancel()
		switch {
		case werr == nil:
			sent++
		case waits && (errors.Is(werr, context.DeadlineExceeded) || errors.Is(werr, ipc.ErrPeerDead)):
			// A waiting policy gave up: nobody is making room, so the
			// next line would wait just as long. Stop and say why.
			rest, all := countRest(sio.in, in, err != nil)
			total := fmt.Sprint(sent + dropped + tooLarge + 1 + rest)
			if !all {
				total = "at least " + total
			}
			return exitError{exitStopped, sendStopped(r, pos[0], werr, sent, total, dropped, tooLarge, limit)}
		case errors.Is(werr, ipc.ErrFull), errors.Is(werr, context.DeadlineExceeded), errors.Is(werr, ipc.ErrPeerDead):
			dropped++
			lastReason = werr
		case errors.Is(werr, ipc.ErrTooLarge):
			tooLarge++
		default:
			return fmt.Errorf("after %d messages: %w", sent, werr)
		}
		line = line[:0]
		if err != nil {
			break
		}
	}
	if dropped+tooLarge > 0 {
		fmt.Fprintf(sio.err, "ringctl send: sent %d, dropped %d (%d ring full, %d larger than the %s maximum)\n",
			sent, dropped+tooLarge, dropped, tooLarge, maxMessage(r))
		if lastReason != nil && !errors.Is(lastReason, ipc.ErrFull) {
			fmt.Fprintf(sio.err, "ringctl send: last drop: %v\n", lastReason)
		}
		return exitError{code: exitDropped}
	}
	return nil
}

// peerForever is the peer timeout --peer-timeout 0 asks for: a wait for a
// consumer that never gives up (ipc's 0 means its default, 1 s).
const peerForever = 100 * 365 * 24 * time.Hour

// peerWait turns --peer-timeout into Wait.PeerTimeout: 0 is forever.
func peerWait(d time.Duration) time.Duration {
	if d == 0 {
		return peerForever
	}
	return d
}

// blockTimeout is how long --policy block waits for room when --timeout
// is not given (what the Block policy's default was).
const blockTimeout = time.Second

// sendPolicy turns --policy into the producer's configuration: whether it
// waits when the ring is full (not drop, drop-oldest), and the wait's
// default limit per message (block: blockTimeout; others: none, 0). The
// names are the override words' (ringctl policy); the producer's own
// settings cannot say all of them, so:
//   - block is park with a deadline (the context's, per message);
//   - backoff is hybrid with backoff's phase lengths (1024 spins, 64
//     yields), then a futex park where backoff slept 20 µs to 1 ms: it is
//     woken as soon as there is room instead of at the end of a sleep;
//   - overflow needs a route, which send has none of (an error, as it was).
func sendPolicy(name string) (cfg ipc.ProducerConfig, waits bool, limit time.Duration, err error) {
	switch name {
	case "hybrid":
		cfg.Wait.Strategy = ipc.Hybrid
	case "spin":
		cfg.Wait.Strategy = ipc.Spin
	case "yield":
		cfg.Wait.Strategy = ipc.Yield
	case "park":
		cfg.Wait.Strategy = ipc.Park
	case "block":
		cfg.Wait.Strategy, limit = ipc.Park, blockTimeout
	case "backoff":
		cfg.Wait = backoffWait
	case "drop":
		return ipc.ProducerConfig{Full: ipc.Drop}, false, 0, nil
	case "drop-oldest":
		return ipc.ProducerConfig{Full: ipc.DropOldest}, false, 0, nil
	case "overflow":
		return cfg, false, 0, errors.New("the overflow policy needs a route, which send has none of: use --policy drop or drop-oldest")
	default:
		return cfg, false, 0, usagef("--policy %q: want hybrid, spin, yield, park, block, backoff, drop or drop-oldest", name)
	}
	return cfg, true, limit, nil
}

// blockOverride keeps an operator's block override (ringctl policy
// --producers block) what it was for send: a wait that gives up after
// blockTimeout. ipc parks under that override until the caller's context
// ends, and send without --timeout has no deadline; this wait hook ends
// the wait past blockTimeout while the override says block. It reads the
// override only while a write waits, every 10 ms at most.
func blockOverride(r *ipc.Ring) func(ipc.WaitInfo) error {
	next := blockTimeout
	return func(wi ipc.WaitInfo) error {
		if wi.Waited < blockTimeout {
			next = blockTimeout // a new wait
			return nil
		}
		if wi.Waited < next {
			return nil
		}
		next = wi.Waited + 10*time.Millisecond
		if st, err := r.Stats(); err == nil && st.ProducerOverride == "block" {
			return errBlockOverride
		}
		return nil
	}
}

// errBlockOverride ends a wait under an operator's block override.
var errBlockOverride = fmt.Errorf("the block override's wait of %v passed: %w", blockTimeout, context.DeadlineExceeded)

// backoffWait is how send and recv wait under "backoff": the Backoff
// policy's spins and yields, then a park (see sendPolicy).
var backoffWait = ipc.Wait{Strategy: ipc.Hybrid, Spins: 1024, Yields: 64}

// checkSlot refuses a --id the ring has no slot for.
func checkSlot(r *ipc.Ring, slot int) error {
	st, err := r.Stats()
	if err != nil {
		return err
	}
	switch {
	case st.Kind == ipc.SPSC && slot > 0:
		return fmt.Errorf("--id %d: %s is an spsc ring: its one producer is slot 0; give --id 0 or leave it out", slot, show(r.Path()))
	case st.Kind == ipc.MPSC && slot >= st.Slots:
		return fmt.Errorf("--id %d: %s has producer slots 0 to %d (--id counts from 0, as ringctl stat does; bridge in's --producer-id counts from 1)", slot, show(r.Path()), st.Slots-1)
	}
	return nil
}

// maxMessage is the ring's largest message as send's counts print it.
func maxMessage(r *ipc.Ring) string {
	st, err := r.Stats()
	if err != nil {
		return "ring's"
	}
	return units.FormatSize(st.MaxMessage)
}

// sendStopped explains why send stopped under a waiting policy: what was
// sent, how the wait ended, whether a consumer is there, and what to do.
func sendStopped(r *ipc.Ring, name string, werr error, sent uint64, total string, dropped, tooLarge uint64, limit time.Duration) string {
	msg := fmt.Sprintf("sent %d of %s", sent, total)
	if dropped > 0 {
		msg += fmt.Sprintf(" (%d dropped)", dropped)
	}
	if tooLarge > 0 {
		msg += fmt.Sprintf(" (%d larger than the %s maximum)", tooLarge, maxMessage(r))
	}
	attached, read := false, uint64(0)
	if st, err := r.Stats(); err == nil {
		attached, read = st.ConsumerAttached, st.MsgsOut
	}
	if errors.Is(werr, context.DeadlineExceeded) {
		if limit == 0 {
			limit = blockTimeout // an operator's block override (blockOverride)
		}
		msg += fmt.Sprintf(": the ring stayed full for %v and ", limit)
	} else {
		msg += ": the ring is full and "
	}
	start := "; start one with `ringctl recv %s`, or use --policy drop"
	if errors.Is(werr, ipc.ErrPeerDead) {
		start = "; start one with `ringctl recv %s`, wait longer for one with --peer-timeout (0: forever), or use --policy drop"
	}
	if !attached {
		if err := ops.Validate(r); errors.Is(err, ipc.ErrCorrupt) {
			// No consumer could start: do not advise one.
			return msg + fmt.Sprintf("no consumer is attached, and none can start: %v; stop every process using it, run `ringctl doctor %s` for what is wrong, then remove and recreate it (ringctl rm %s; messages still in it are lost)", err, show(name), show(name))
		}
	}
	switch {
	case attached:
		return msg + fmt.Sprintf("its consumer is attached but did not make room; see `ringctl stat %s`, wait longer with --timeout, or use --policy drop", show(name))
	case read == 0:
		msg += "no consumer is attached (none since creation)"
	default:
		msg += fmt.Sprintf("no consumer is attached (consumers have read %d messages before)", read)
	}
	return msg + fmt.Sprintf(start, show(name))
}

// countRest counts the lines left on stdin after send stopped, so that it
// can say "sent N of M". A pipe or terminal that stays open is not waited
// for beyond a moment: all is false then, and n is what was counted.
func countRest(stdin io.Reader, in *bufio.Reader, atEOF bool) (n uint64, all bool) {
	if atEOF {
		return 0, true
	}
	type result struct {
		n   uint64
		all bool
	}
	var counted uint64
	count := func() result {
		buf := make([]byte, 64<<10)
		partial := false
		for {
			k, err := in.Read(buf)
			for _, b := range buf[:k] {
				if b == '\n' {
					counted++
				}
			}
			if k > 0 {
				partial = buf[k-1] != '\n'
			}
			if err != nil {
				if partial {
					counted++
				}
				return result{counted, errors.Is(err, io.EOF)}
			}
		}
	}
	f, ok := stdin.(*os.File)
	if !ok {
		res := count()
		return res.n, res.all
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		res := count()
		return res.n, res.all
	}
	done := make(chan result, 1)
	go func() { done <- count() }()
	select {
	case res := <-done:
		return res.n, res.all
	case <-time.After(2 * time.Second):
		return 0, false
	}
}
