package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shmring/shmring/internal/units"
	"github.com/shmring/shmring/ipc"
	"github.com/shmring/shmring/shm"
)

// What ipc.Config's documentation states (ring's layout decides them;
// ringctl checks its flags against them to give a usage error, and
// ipc.Create would refuse a value outside them anyway).
const (
	minCapacity      = 1 << 10 // Config.Capacity: a power of two >= 1 KiB
	defaultProducers = 64      // Config.Producers 0
	maxProducers     = 1 << 12 // the header's slot field
)

func runCreate(io stdio, args []string) error {
	fs := newFlags(io, "create")
	var loc location
	loc.register(fs)
	var size, maxMsg units.SizeFlag
	fs.Var(&size, "size", "capacity of the data area: a power of two, e.g. 64KiB, 1MiB (required)")
	fs.Var(&maxMsg, "max-msg", "largest message, at most size/8 (default size/8)")
	kind := fs.String("kind", "spsc", "ring kind: spsc (one producer) or mpsc (many)")
	producers := fs.Int("producers", 0, "mpsc: producer slots, the most producers at once (default 64)")
	mode := fs.String("mode", "0600", "permission bits of the segment file, octal")
	dropOldest := fs.Bool("drop-oldest", false, "let producers use --policy drop-oldest (newest wins; the consumer copies each message; an mpsc ring needs a reader of layout version 2)")
	headerCommit := fs.Bool("header-commit", false, "spsc: the consumer finds messages by their headers (one cache line less per message; layout version 2)")
	doorbell := fs.Bool("doorbell", false, "every producer rings a wait set's doorbell (flag bit 4): a set of many such rings sleeps on one futex word (builds and C producers that do not know the flag refuse the ring)")
	seqs := fs.Bool("sequences", false, "records carry their producer's sequence number: a message resent after a crash is delivered once (8 bytes per record)")
	stamps := fs.Bool("timestamps", false, "records carry their commit time: queueing delay is measured (8 bytes per record)")
	var target, interval units.DurationFlag
	fs.Var(&target, "target-delay", "adaptive pressure: raise it when queueing delay stays above DUR (implies --timestamps)")
	fs.Var(&interval, "delay-interval", "how long the delay must stay above the target (default 100ms)")
	var high, low units.SizeFlag
	fs.Var(&high, "pressure-high", "raise pressure when the depth reaches SIZE")
	fs.Var(&low, "pressure-low", "lower it again at SIZE or less (default half of --pressure-high)")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	if !size.Given {
		return usagef("--size is required, e.g. --size 1MiB")
	}
	var k ipc.Kind
	switch *kind {
	case "spsc":
		k = ipc.SPSC
		if *producers != 0 {
			return usagef("--producers is for --kind mpsc; an spsc ring has one producer")
		}
	case "mpsc":
		k = ipc.MPSC
		given := false
		fs.Visit(func(f *flag.Flag) { given = given || f.Name == "producers" })
		if given && *producers == 0 {
			return usagef("--producers 0: want 1 to %d (without the flag: %d)", maxProducers, defaultProducers)
		}
		if *producers < 0 || *producers > maxProducers {
			return usagef("--producers %d: want 1 to %d", *producers, maxProducers)
		}
	default:
		return usagef("--kind %q: want spsc or mpsc", *kind)
	}
	m, err := strconv.ParseUint(*mode, 8, 32)
	if err != nil || m > 0o777 {
		return usagef("--mode %q: want octal permission bits such as 0600 or 0640", *mode)
	}
	if m&0o002 != 0 && !loc.trust {
		return usagef("--mode %s lets any user write the ring, so every command would refuse to open it; use 0660 or 0640 to share it with a group, or add --trust-owner to create it anyway (commands that open it then need --trust-owner too)", *mode)
	}
	cfg := ipc.Config{Kind: k, Capacity: size.Value, Mode: os.FileMode(m), Producers: *producers,
		Timestamps: *stamps, Sequences: *seqs, DropOldest: *dropOldest, HeaderCommit: *headerCommit, Doorbell: *doorbell}
	if target.Given {
		iv := 100 * time.Millisecond
		if interval.Given {
			iv = interval.Value
		}
		cfg.TargetDelay, cfg.DelayInterval = target.Value, iv
		cfg.Timestamps = true // the delay is measured from the records' timestamps
	} else if interval.Given {
		return usagef("--delay-interval goes with --target-delay")
	}
	if high.Given {
		lo := high.Value / 2
		if low.Given {
			lo = low.Value
		}
		if lo > high.Value || high.Value > size.Value {
			return usagef("want --pressure-low <= --pressure-high <= --size")
		}
		cfg.HighWater, cfg.LowWater = high.Value, lo
	} else if low.Given {
		return usagef("--pressure-low goes with --pressure-high")
	}
	if maxMsg.Given {
		if maxMsg.Value == 0 {
			return usagef("--max-msg must be at least 1 byte")
		}
		cfg.MaxMessage = maxMsg.Value
	}
	if !capacityOK(size.Value) {
		return usagef("%s", sizeAdvice(size))
	}
	r, err := ipc.Create(pos[0], cfg, loc.options()...)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			if path, ok := notASegment(pos[0], loc); ok {
				return fmt.Errorf("%s exists and is not a shmring ring, so ringctl rm leaves it alone; remove it yourself (rm %s) if nothing needs it, or choose another name", path, path)
			}
		}
		return err
	}
	defer r.Close()
	if m == 0 {
		// Config.Mode 0 means the default, 0600; --mode 0 has always
		// meant no permission bits at all.
		if err := os.Chmod(r.Path(), 0); err != nil {
			return err
		}
	}
	st, err := r.Stats()
	if err != nil {
		return err
	}
	slots := ""
	if st.Kind == ipc.MPSC {
		slots = fmt.Sprintf(", %d producer slots", st.Slots)
	}
	fmt.Fprintf(io.out, "created %s: %s%s, capacity %s, max message %s, mode %04o%s\n",
		show(r.Path()), st.Kind, slots, units.FormatSize(st.Capacity), units.FormatSize(st.MaxMessage), m, createdOptions(st))
	return nil
}

// createdOptions lists, for create's confirmation line, the options the
// ring was created with beyond its geometry ("" if none).
func createdOptions(st ipc.Stats) string {
	var o []string
	for _, f := range []struct {
		on   bool
		name string
	}{{st.Sequences, "sequences"}, {st.Timestamps, "timestamps"}, {st.DropOldest, "drop-oldest"}, {st.HeaderCommit, "header-commit"}, {st.Doorbell, "doorbell"}} {
		if f.on {
			o = append(o, f.name)
		}
	}
	if st.PressureHigh != 0 {
		o = append(o, fmt.Sprintf("pressure high %s, low %s", units.FormatSize(st.PressureHigh), units.FormatSize(st.PressureLow)))
	}
	if st.TargetDelay != 0 {
		o = append(o, fmt.Sprintf("target delay %v", st.TargetDelay))
	}
	if len(o) == 0 {
		return ""
	}
	return ", " + strings.Join(o, ", ")
}

// capacityOK reports whether n can be a ring's capacity.
func capacityOK(n uint64) bool { return n >= minCapacity && n&(n-1) == 0 }

// sizeAdvice says what --size was parsed as and why it is refused, and,
// for a decimal unit whose binary twin would do, suggests that.
func sizeAdvice(size units.SizeFlag) string {
	const rule = "the capacity must be a power of two of at least 1KiB, e.g. 64KiB or 1MiB"
	if alt, v, ok := units.BinaryAlternative(size.Raw); ok {
		if capacityOK(v) {
			return fmt.Sprintf("--size %s: %s is %d bytes (SI); did you mean %s? (%s)", size.Raw, size.Raw, size.Value, alt, rule)
		}
		return fmt.Sprintf("--size %s: %s is %d bytes (SI); %s", size.Raw, size.Raw, size.Value, rule)
	}
	if _, err := strconv.ParseUint(size.Raw, 10, 64); err == nil {
		return fmt.Sprintf("--size %s: %s", size.Raw, rule)
	}
	return fmt.Sprintf("--size %s: %s is %d bytes (%s); %s", size.Raw, size.Raw, size.Value, units.FormatSize(size.Value), rule)
}

// notASegment reports whether the file that name resolves to exists and is
// not a segment (ringctl rm refuses those): not a regular file, or not
// starting with the segment magic.
func notASegment(name string, loc location) (string, bool) {
	var o []shm.Option
	if loc.dir != "" {
		o = append(o, shm.Dir(loc.dir))
	}
	path, err := shm.Resolve(name, o...)
	if err != nil {
		return "", false
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return "", false
	}
	if !fi.Mode().IsRegular() {
		return path, true
	}
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	magic := make([]byte, len(shm.Magic))
	if _, err := io.ReadFull(f, magic); err != nil {
		return path, true // shorter than a magic
	}
	return path, string(magic) != shm.Magic
}
