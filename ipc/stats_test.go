package ipc

import (
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shmring/shmring/ring"
)

// fillDistinct sets every number of the struct v points to a value of its
// own (1, 2, 3, ... in field order; arrays element by element) and every
// bool to true, so that a copy that drops or swaps a field shows.
func fillDistinct(v reflect.Value) {
	n := uint64(0)
	var fill func(f reflect.Value)
	fill = func(f reflect.Value) {
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			n++
			f.SetInt(int64(n))
		case reflect.Uint32, reflect.Uint64:
			n++
			f.SetUint(n)
		case reflect.Array:
			for i := range f.Len() {
				fill(f.Index(i))
			}
		default:
			panic("fillDistinct: add kind " + f.Kind().String())
		}
	}
	for i := range v.NumField() {
		fill(v.Field(i))
	}
}

// ipc's Stats copies every field of ring.Stats, by name, explicitly: one
// that ring adds and ipc forgets fails here. The raw words that ipc shows
// decoded are checked by their decoded values.
func TestStatsCopiesEveryRingField(t *testing.T) {
	var rs ring.Stats
	fillDistinct(reflect.ValueOf(&rs).Elem())
	rs.ProducerMode, rs.ConsumerMode = uint32(pDrop), 0
	rs.Pressure = ring.PressureDelay

	s := statsOf(rs)
	sv, rv := reflect.ValueOf(s), reflect.ValueOf(rs)
	decoded := map[string]bool{"ProducerMode": true, "ConsumerMode": true, "Pressure": true}
	for i := range rv.NumField() {
		name := rv.Type().Field(i).Name
		if decoded[name] {
			continue
		}
		f := sv.FieldByName(name)
		require.True(t, f.IsValid(), "ipc.Stats has no field %s of ring.Stats", name)
		require.Equal(t, rv.Field(i).Interface(), f.Interface(), "Stats.%s", name)
	}
	require.Equal(t, "drop", s.ProducerOverride)
	require.Equal(t, "", s.ConsumerOverride, "no override")
	require.Equal(t, Pressure{Delay: true}, s.Pressure)
	require.Equal(t, Pressure{Depth: true, Delay: true}, pressureOf(ring.PressureDepth|ring.PressureDelay))
	require.Equal(t, time.Duration(rs.TargetDelay), s.TargetDelay)
}

// SlotStats copies every field of ring.SlotStats, adds Alive, and derives
// NextSeq (one past the last sequence begun) only in rings with sequences.
func TestSlotStatsCopiesEveryRingField(t *testing.T) {
	var rs ring.SlotStats
	fillDistinct(reflect.ValueOf(&rs).Elem())
	s := slotStats(rs, true, true)
	sv, rv := reflect.ValueOf(s), reflect.ValueOf(rs)
	for i := range rv.NumField() {
		name := rv.Type().Field(i).Name
		f := sv.FieldByName(name)
		require.True(t, f.IsValid(), "ipc.SlotStats has no field %s of ring.SlotStats", name)
		require.Equal(t, rv.Field(i).Interface(), f.Interface(), "SlotStats.%s", name)
	}
	require.True(t, s.Alive)
	require.Equal(t, rs.LastSeq+1, s.NextSeq)
	require.Zero(t, slotStats(rs, false, false).NextSeq, "no sequences: 0")
	require.False(t, slotStats(rs, false, false).Alive)
}
