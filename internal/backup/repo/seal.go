package repo

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Sealed objects (chunks, manifests, the key-check) are laid out as
//
//	byte      sealVersion
//	[12]byte  nonce, random
//	[]byte    AES-256-GCM ciphertext of the payload, with its 16-byte tag
//
// and the payload is
//
//	byte      encoding: encRaw or encZstd
//	[]byte    the data, as is or zstd-compressed
//
// The additional data binds an object to its place: a chunk's ID, a
// manifest's object name, "keycheck" with the repository ID.
const (
	sealVersion = 1
	nonceSize   = 12
	sealHeader  = 1 + nonceSize

	encRaw  = 0
	encZstd = 1
)

// Labels of the subkeys derived from the repository key with HKDF-SHA256.
const (
	labelIDKey   = "strata backup repository v1: chunk id"
	labelSealKey = "strata backup repository v1: aes-256-gcm"
)

// ChunkID names a chunk: the HMAC-SHA256 of its plaintext.
type ChunkID [sha256.Size]byte

// String returns the ID in hexadecimal, as used in object names and
// manifests.
func (id ChunkID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText writes the ID in hexadecimal.
func (id ChunkID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText reads an ID in hexadecimal.
func (id *ChunkID) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(id) {
		return fmt.Errorf("%w: chunk ID %q: want %d hexadecimal digits", ErrInvalid, b, 2*len(id))
	}
	if _, err := hex.Decode(id[:], b); err != nil {
		return fmt.Errorf("%w: chunk ID %q: %w", ErrInvalid, b, err)
	}
	return nil
}

// objectName returns where the chunk is stored.
func (id ChunkID) objectName() string {
	s := id.String()
	return chunksPrefix + s[:2] + "/" + s
}

// sealer holds the keys derived from a repository key. It is safe for
// concurrent use.
type sealer struct {
	idKey []byte
	aead  cipher.AEAD
	macs  sync.Pool // of hash.Hash (HMAC-SHA256 under idKey)
}

func newSealer(k Key) (*sealer, error) {
	idKey, err := hkdf.Key(sha256.New, k[:], nil, labelIDKey, 32)
	if err != nil {
		return nil, err
	}
	sealKey, err := hkdf.Key(sha256.New, k[:], nil, labelSealKey, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	s := &sealer{idKey: idKey, aead: aead}
	s.macs.New = func() any { return hmac.New(sha256.New, s.idKey) }
	return s, nil
}

// chunkID computes the ID of a chunk's plaintext.
func (s *sealer) chunkID(data []byte) ChunkID {
	h := s.macs.Get().(hash.Hash)
	h.Reset()
	h.Write(data)
	var id ChunkID
	h.Sum(id[:0])
	s.macs.Put(h)
	return id
}

// zstd coders are shared: EncodeAll and DecodeAll are safe for concurrent
// use, and each call borrows an internal state.
var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
	errZstd  error
)

func zstdCoders() (*zstd.Encoder, *zstd.Decoder, error) {
	zstdOnce.Do(func() {
		zstdEnc, errZstd = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(4), zstd.WithZeroFrames(true))
		if errZstd != nil {
			return
		}
		zstdDec, errZstd = zstd.NewReader(nil, zstd.WithDecoderConcurrency(4), zstd.WithDecoderMaxMemory(maxChunkSize+1<<20))
	})
	return zstdEnc, zstdDec, errZstd
}

// seal compresses data (keeping it raw when zstd does not make it
// smaller), encrypts it with ad as additional data, and appends the sealed
// object to dst. scratch is a reusable buffer for the payload; the grown
// buffer is returned with the result.
func (s *sealer) seal(dst, scratch, data, ad []byte, compress bool) (sealed, newScratch []byte, err error) {
	enc, _, err := zstdCoders()
	if err != nil {
		return nil, scratch, err
	}
	if need := 1 + enc.MaxEncodedSize(len(data)); cap(scratch) < need {
		scratch = make([]byte, 0, need)
	}
	if need := len(dst) + sealHeader + 1 + enc.MaxEncodedSize(len(data)) + s.aead.Overhead(); cap(dst) < need {
		dst = append(make([]byte, 0, need), dst...)
	}
	// The probes use scratch before the payload does.
	compress = compress && compressible(enc, data, scratch[:0])
	payload := scratch[:0]
	payload = append(payload, encRaw)
	if compress {
		payload = append(payload[:0], encZstd)
		payload = enc.EncodeAll(data, payload)
		if len(payload) >= 1+len(data) {
			payload = append(payload[:0], encRaw)
			payload = append(payload, data...)
		}
	} else {
		payload = append(payload, data...)
	}
	dst = append(dst, sealVersion)
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, payload, fmt.Errorf("nonce: %w", err)
	}
	dst = append(dst, nonce...)
	dst = s.aead.Seal(dst, nonce, payload, ad)
	return dst, payload, nil
}

// Compression probe: data larger than probeMin is compressed only if one
// of two probeSize samples (from the start and the middle) shrinks by at
// least 3%. Incompressible data (compressed images, encrypted volumes,
// media) then costs two small probes instead of a full zstd pass.
const (
	probeMin  = 256 << 10
	probeSize = 32 << 10
)

// compressible reports whether data looks worth compressing; buf is
// scratch space for the probes.
func compressible(enc *zstd.Encoder, data, buf []byte) bool {
	if len(data) < probeMin {
		return true
	}
	for _, off := range []int{0, len(data) / 2} {
		sample := data[off : off+probeSize]
		if len(enc.EncodeAll(sample, buf[:0])) < probeSize*97/100 {
			return true
		}
	}
	return false
}

// errAuth is the cause of a sealed object that fails authentication.
var errAuth = errors.New("authentication failed (the object was altered, truncated or moved, or the key is wrong)")

// open reverses seal, appending the plaintext to dst. scratch is a
// reusable buffer for the decrypted payload.
func (s *sealer) open(dst, scratch, sealed, ad []byte) (plain, newScratch []byte, err error) {
	if len(sealed) < sealHeader+s.aead.Overhead()+1 {
		return nil, scratch, fmt.Errorf("%w: %d bytes is too short for a sealed object", ErrCorrupt, len(sealed))
	}
	if sealed[0] != sealVersion {
		return nil, scratch, fmt.Errorf("%w: sealed object version %d (this strata reads %d)", ErrUnsupportedFormat, sealed[0], sealVersion)
	}
	payload, err := s.aead.Open(scratch[:0], sealed[1:sealHeader], sealed[sealHeader:], ad)
	if err != nil {
		return nil, scratch, fmt.Errorf("%w: %w", ErrCorrupt, errAuth)
	}
	switch payload[0] {
	case encRaw:
		return append(dst, payload[1:]...), payload, nil
	case encZstd:
		_, dec, err := zstdCoders()
		if err != nil {
			return nil, payload, err
		}
		out, err := dec.DecodeAll(payload[1:], dst)
		if err != nil {
			return nil, payload, fmt.Errorf("%w: decompress: %w", ErrCorrupt, err)
		}
		return out, payload, nil
	default:
		return nil, payload, fmt.Errorf("%w: unknown encoding %d", ErrUnsupportedFormat, payload[0])
	}
}
