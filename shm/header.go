package shm

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// The header page: the first HeaderSize bytes of every segment file. All
// fields are little-endian. It is written once, before the segment is
// published under its name (see Create), and never changed afterwards.
//
//	off size field
//	  0    8 magic         "SHMSEG\x00\x01"
//	  8    4 byteOrder     0x01020304 (the bytes 04 03 02 01)
//	 12    4 version       layout version of this header (Version)
//	 16    8 headerSize    HeaderSize
//	 24    8 bodyOffset    offset of the body (HeaderSize)
//	 32    8 bodySize      size of the body in bytes
//	 40    8 totalSize     bodyOffset + bodySize = the file size
//	 48    8 createdNanos  creation time, Unix nanoseconds
//	 56    4 creatorPID
//	 60    4 creatorUID
//	 64    8 flags         0
//	 72    4 checksum      CRC-32C (Castagnoli) of bytes [0, 72)
//	 76 4020 reserved, zero
const (
	// HeaderSize is the size of the header page; the body starts after it.
	HeaderSize = 4096
	// Version is the header layout version this package reads and writes.
	Version uint32 = 1
	// Magic is the first 8 bytes of every segment.
	Magic = "SHMSEG\x00\x01"
	// byteOrderMark is written little-endian like every field, so it reads
	// as 0x01020304 to a little-endian reader. This package encodes and
	// decodes it explicitly little-endian, so it catches damage, not a
	// big-endian host: shmring runs on little-endian hosts only
	// (docs/layout.md).
	byteOrderMark uint32 = 0x01020304

	offMagic        = 0
	offByteOrder    = 8
	offVersion      = 12
	offHeaderSize   = 16
	offBodyOffset   = 24
	offBodySize     = 32
	offTotalSize    = 40
	offCreated      = 48
	offCreatorPID   = 56
	offCreatorUID   = 60
	offFlags        = 64
	offChecksum     = 72
	headerFieldsEnd = 76
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is the decoded header page.
type Header struct {
	Version      uint32
	BodySize     uint64
	TotalSize    uint64
	CreatedNanos int64
	CreatorPID   uint32
	CreatorUID   uint32
}

func encodeHeader(b []byte, h Header) {
	le := binary.LittleEndian
	clear(b[:HeaderSize])
	copy(b[offMagic:], Magic)
	le.PutUint32(b[offByteOrder:], byteOrderMark)
	le.PutUint32(b[offVersion:], Version)
	le.PutUint64(b[offHeaderSize:], HeaderSize)
	le.PutUint64(b[offBodyOffset:], HeaderSize)
	le.PutUint64(b[offBodySize:], h.BodySize)
	le.PutUint64(b[offTotalSize:], HeaderSize+h.BodySize)
	le.PutUint64(b[offCreated:], uint64(h.CreatedNanos))
	le.PutUint32(b[offCreatorPID:], h.CreatorPID)
	le.PutUint32(b[offCreatorUID:], h.CreatorUID)
	le.PutUint64(b[offFlags:], 0)
	le.PutUint32(b[offChecksum:], crc32.Checksum(b[:offChecksum], castagnoli))
}

// DecodeHeader validates a header page, most specific check first: magic,
// byte order, version, checksum, then geometry against fileSize. Each
// failure wraps its own sentinel and names the field and its offset.
func DecodeHeader(b []byte, fileSize int64) (Header, error) {
	le := binary.LittleEndian
	if len(b) < HeaderSize || fileSize < HeaderSize {
		return Header{}, fmt.Errorf("file of %d bytes is smaller than the %d-byte segment header: it is not a segment, or it was truncated (from a size its lost header held); if nothing uses it, remove it by hand (rm), and recreate the ring: %w", fileSize, HeaderSize, ErrTooSmall)
	}
	if string(b[offMagic:offMagic+8]) != Magic {
		return Header{}, fmt.Errorf("magic at offset %d is %q, want %q: %w", offMagic, b[offMagic:offMagic+8], Magic, ErrBadMagic)
	}
	if bo := le.Uint32(b[offByteOrder:]); bo != byteOrderMark {
		return Header{}, fmt.Errorf("byte-order mark at offset %d reads %#08x, want %#08x: the segment was made on a machine of the other byte order: %w", offByteOrder, bo, byteOrderMark, ErrByteOrder)
	}
	if v := le.Uint32(b[offVersion:]); v != Version {
		return Header{}, fmt.Errorf("layout version at offset %d is %d, this build reads %d: use a shmring release that reads version %d, or recreate the segment: %w", offVersion, v, Version, v, ErrVersion)
	}
	if got, want := le.Uint32(b[offChecksum:]), crc32.Checksum(b[:offChecksum], castagnoli); got != want {
		return Header{}, fmt.Errorf("header checksum at offset %d is %#08x, computed %#08x: %w", offChecksum, got, want, ErrChecksum)
	}
	h := Header{
		Version:      Version,
		BodySize:     le.Uint64(b[offBodySize:]),
		TotalSize:    le.Uint64(b[offTotalSize:]),
		CreatedNanos: int64(le.Uint64(b[offCreated:])),
		CreatorPID:   le.Uint32(b[offCreatorPID:]),
		CreatorUID:   le.Uint32(b[offCreatorUID:]),
	}
	if hs := le.Uint64(b[offHeaderSize:]); hs != HeaderSize {
		return Header{}, fmt.Errorf("header size at offset %d is %d, want %d: %w", offHeaderSize, hs, HeaderSize, ErrGeometry)
	}
	if bo := le.Uint64(b[offBodyOffset:]); bo != HeaderSize {
		return Header{}, fmt.Errorf("body offset at offset %d is %d, want %d: %w", offBodyOffset, bo, HeaderSize, ErrGeometry)
	}
	if h.BodySize > maxBody || h.TotalSize != HeaderSize+h.BodySize {
		return Header{}, fmt.Errorf("total size at offset %d is %d, but header %d + body %d (offset %d) = %d: %w", offTotalSize, h.TotalSize, HeaderSize, h.BodySize, offBodySize, HeaderSize+h.BodySize, ErrGeometry)
	}
	if f := le.Uint64(b[offFlags:]); f != 0 {
		return Header{}, fmt.Errorf("flags at offset %d are %#x, this build knows none: %w", offFlags, f, ErrVersion)
	}
	if uint64(fileSize) < h.TotalSize {
		return Header{}, fmt.Errorf("file is %d bytes but its header (offset %d) says %d: the segment was truncated to %d bytes from %d; stop any process still using it, then remove and recreate it (ringctl rm, ringctl create): %w", fileSize, offTotalSize, h.TotalSize, fileSize, h.TotalSize, ErrTooSmall)
	}
	if uint64(fileSize) != h.TotalSize {
		return Header{}, fmt.Errorf("file is %d bytes but its header (offset %d) says %d: %w", fileSize, offTotalSize, h.TotalSize, ErrGeometry)
	}
	return h, nil
}

// maxBody bounds the body so sizes never overflow: 2^48 bytes (256 TiB).
const maxBody = 1 << 48
