package ring_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ring"
	"github.com/shmring/shmring/shm"
	"github.com/stretchr/testify/require"
)

// seqKillBefore is how many messages the child commits before the write it
// is killed in; message i has sequence i (a new ring numbers from 1).
const seqKillBefore = 4

func seqMsg(i uint64) []byte { return []byte("m" + strconv.FormatUint(i, 10)) }

// seqKillChild commits seqKillBefore messages, then stops its next write
// (one message, or a batch of three) inside the real write code at the
// nth time it reaches the step, says "ready" and waits to be SIGKILLed.
func seqKillChild() error {
	seg, err := shm.Open(os.Getenv("SHMRING_T_NAME"))
	if err != nil {
		return err
	}
	r, err := ring.Attach(seg.Body())
	if err != nil {
		return err
	}
	p, err := newProducer(r)
	if err != nil {
		return err
	}
	for i := uint64(1); i <= seqKillBefore; i++ {
		if err := p.TryWrite(seqMsg(i)); err != nil {
			return err
		}
	}
	step, _ := strconv.Atoi(os.Getenv("SHMRING_T_STEP"))
	nth, _ := strconv.Atoi(os.Getenv("SHMRING_T_NTH"))
	ring.SetSeqHook(p, func(s int) {
		if s != step {
			return
		}
		if nth--; nth > 0 {
			return
		}
		fmt.Println("ready")
		for {
			time.Sleep(time.Hour) // until the parent's SIGKILL
		}
	})
	if os.Getenv("SHMRING_T_BATCH") != "" {
		const k = seqKillBefore
		_, err = p.WriteBatch([][]byte{seqMsg(k + 1), seqMsg(k + 2), seqMsg(k + 3)})
	} else {
		err = p.TryWrite(seqMsg(seqKillBefore + 1))
	}
	return fmt.Errorf("the write ended (%v) without reaching step %d", err, step)
}

// TestSequencesSurviveKill: a producer process SIGKILLed inside a write,
// between the store of the record's sequence and its commit or right
// after the commit (SPSC: the position store), in rings with sequences
// of every producer protocol, with and without timestamps. Its successor
// never gets a number its predecessor may have committed, so none of its
// new messages is discarded as a duplicate; every committed message is
// delivered once; and an application that resends, with their original
// sequences, the messages from the start of InDoubt on, loses none and
// duplicates none.
func TestSequencesSurviveKill(t *testing.T) {
	type mode struct {
		name      string
		batch     bool
		step, nth int
		// what the kill leaves of the dying write, per ring kind (spsc,
		// header-commit, mpsc): messages committed, reservations lost
		committed [3]uint64
		lost      [3]uint64
	}
	modes := []mode{
		{"single-after-commit", false, ring.StepCommit, 1, [3]uint64{1, 1, 1}, [3]uint64{}},
		{"single-before-commit", false, ring.StepSeqStored, 1, [3]uint64{}, [3]uint64{0, 0, 1}},
		// SPSC: the batch's position store; MPSC: its second record's commit.
		{"batch-after-commit", true, ring.StepCommit, 2, [3]uint64{3, 3, 2}, [3]uint64{0, 0, 1}},
		// The second record's sequence stored: in a header-commit or MPSC
		// ring the first is committed by its header already.
		{"batch-before-commit", true, ring.StepSeqStored, 2, [3]uint64{0, 1, 1}, [3]uint64{0, 0, 2}},
	}
	kinds := []struct {
		name string
		cfg  ring.Config
	}{
		{"spsc", ring.Config{Kind: ring.SPSC}},
		{"spsc-header-commit", ring.Config{Kind: ring.SPSC, HeaderCommit: true}},
		{"mpsc", ring.Config{Kind: ring.MPSC, Slots: 2}},
	}
	for ki, kind := range kinds {
		for _, ts := range []bool{false, true} {
			for _, m := range modes {
				cfg := kind.cfg
				cfg.Capacity, cfg.MaxMessage, cfg.Sequences, cfg.Timestamps = 1<<12, 64, true, ts
				nth := m.nth
				if m.batch && m.step == ring.StepCommit && cfg.Kind == ring.SPSC {
					nth = 1 // one position store commits the whole batch
				}
				name := fmt.Sprintf("%s/ts=%v/%s", kind.name, ts, m.name)
				t.Run(name, func(t *testing.T) {
					for _, resend := range []bool{false, true} {
						runSeqKill(t, cfg, m.batch, m.step, nth, m.committed[ki], m.lost[ki], resend)
					}
				})
			}
		}
	}
}

// runSeqKill runs one kill (see TestSequencesSurviveKill); the dying write
// leaves committed of its messages committed and lost reservations for
// the consumer to skip. resend: the successor resends its predecessor's
// messages from InDoubt's start on, with their sequences, and the consumer
// drains before the successor opens; else it writes new messages only, and
// the consumer reads everything afterwards.
func runSeqKill(t *testing.T, cfg ring.Config, batch bool, step, nth int, committed, lost uint64, resend bool) {
	t.Helper()
	size, err := ring.Size(cfg)
	require.NoError(t, err)
	seg, err := shm.Create(testutil.Name(t), size, func(body []byte) error { return ring.Format(body, cfg) })
	require.NoError(t, err)
	t.Cleanup(func() { _ = seg.Close() })
	r := attach(t, seg.Body())

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), childEnv+"=seq-kill", "SHMRING_T_NAME="+seg.Path(),
		"SHMRING_T_STEP="+strconv.Itoa(step), "SHMRING_T_NTH="+strconv.Itoa(nth))
	if batch {
		cmd.Env = append(cmd.Env, "SHMRING_T_BATCH=1")
	}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	waited := false
	t.Cleanup(func() {
		if !waited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if line != "ready\n" {
			_ = cmd.Wait()
			waited = true
			t.Fatalf("the child did not stop at step %d: %q, stderr: %s", step, line, stderr.String())
		}
	case <-time.After(5 * time.Minute): // only a stuck child gets here
		t.Fatalf("the child never reached step %d; stderr: %s", step, stderr.String())
	}
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	waited = true

	written := uint64(seqKillBefore + 1)
	if batch {
		written = seqKillBefore + 3
	}
	last := seqKillBefore + committed // the last sequence committed

	c, err := r.NewConsumer()
	require.NoError(t, err)
	var got []string
	drain := func() {
		for {
			n, err := c.ReadBatch(100, func(m []byte) { got = append(got, string(m)) })
			require.NoError(t, err)
			if n > 0 {
				continue
			}
			if !c.Blocked() {
				return
			}
			ok, err := recoverWith(t, c, func(int) bool { return false }) // the child is dead
			require.NoError(t, err)
			require.True(t, ok)
		}
	}
	if resend {
		drain()
	}

	p, err := newProducer(r)
	require.NoError(t, err)
	from, to := p.InDoubt()
	require.Equal(t, p.NextSeq(), to)
	require.Greater(t, to, last, "the successor numbers past every committed sequence")
	require.LessOrEqual(t, from, last+1, "every sequence below InDoubt's start was committed")
	var want []string
	if resend {
		for s := from; s <= written; s++ {
			require.NoError(t, p.TryWriteSeq(s, seqMsg(s)))
		}
		for s := uint64(1); s <= written; s++ {
			want = append(want, string(seqMsg(s)))
		}
	} else {
		for s := uint64(1); s <= last; s++ {
			want = append(want, string(seqMsg(s)))
		}
	}
	for j := 1; j <= 3; j++ {
		msg := fmt.Sprint("new", j)
		require.NoError(t, p.TryWrite([]byte(msg)))
		want = append(want, msg)
	}
	drain()
	require.Equal(t, want, got, "resend %v: every committed message once, then the resent ones, then the new ones", resend)
	st := r.Stats()
	dups := uint64(0)
	if resend && from <= last {
		dups = last - from + 1
	}
	require.Equal(t, dups, st.Duplicates, "only resent messages that were committed are discarded")
	require.Equal(t, lost, st.Lost, "reservations of the dead producer skipped")
}

// TestSequenceWordsResume: where a producer resumes when the words were
// left by a producer that kept only the last committed sequence (an older
// release, or a writer from an older docs/layout.md), and that a last
// sequence leaving no number is refused as damage.
func TestSequenceWordsResume(t *testing.T) {
	_, r := formatRing(t, ring.Config{Kind: ring.SPSC, Capacity: 1 << 12, Sequences: true})
	ring.SetLastSeq(r, 0, 7)
	p, err := r.NewProducer()
	require.NoError(t, err)
	from, to := p.InDoubt()
	require.Equal(t, [3]uint64{8, 8, 8}, [3]uint64{p.NextSeq(), from, to})
	ring.SetSeqBegun(r, 9)
	p, err = r.NewProducer()
	require.NoError(t, err)
	from, to = p.InDoubt()
	require.Equal(t, [3]uint64{10, 8, 10}, [3]uint64{p.NextSeq(), from, to})
	ring.SetSeqBegun(r, 1<<64-1)
	_, err = r.NewProducer()
	require.ErrorIs(t, err, ring.ErrCorrupt)

	_, r = formatRing(t, ring.Config{Kind: ring.MPSC, Slots: 2, Capacity: 1 << 12, Sequences: true})
	ring.SetLastSeq(r, 1, 1<<64-1)
	_, err = r.NewSlotProducer(1)
	require.ErrorIs(t, err, ring.ErrCorrupt)
	p, err = r.NewSlotProducer(0)
	require.NoError(t, err, "another slot is not concerned")
	from, to = p.InDoubt()
	require.Equal(t, [3]uint64{1, 1, 1}, [3]uint64{p.NextSeq(), from, to})
}
