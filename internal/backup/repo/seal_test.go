package repo

import (
	"bytes"
	"strings"
	"testing"
)

// TestSeal round-trips contents of every shape through seal and open,
// checks which encoding each gets, and that any change to a sealed object
// or its additional data is refused.
func TestSeal(t *testing.T) {
	k, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSealer(k)
	if err != nil {
		t.Fatal(err)
	}
	text := []byte(strings.Repeat("strata backs up workloads; ", 40_000))
	halfRandom := append(randomBytes(1, 512*kib), make([]byte, 512*kib)...) // the middle probe sees zeros
	tests := []struct {
		name string
		data []byte
		enc  byte
	}{
		{"empty", nil, encRaw},
		{"one byte", []byte{7}, encRaw},
		{"tiny text", []byte("hello, hello"), encRaw}, // the zstd frame is larger
		{"small text", []byte(strings.Repeat("hello, ", 30)), encZstd},
		{"zeros", make([]byte, mib), encZstd},
		{"text", text, encZstd},
		{"random", randomBytes(2, mib), encRaw},
		{"small random", randomBytes(3, 100*kib), encRaw}, // compressed, found no smaller
		{"random then zeros", halfRandom, encZstd},
	}
	var sealed, scratch []byte
	for _, tc := range tests {
		ad := []byte("ad:" + tc.name)
		sealed, scratch, err = s.seal(sealed[:0], scratch, tc.data, ad, true)
		if err != nil {
			t.Fatalf("%s: seal: %v", tc.name, err)
		}
		plain, _, err := s.open(nil, nil, sealed, ad)
		if err != nil || !bytes.Equal(plain, tc.data) {
			t.Fatalf("%s: open: %v (equal %v)", tc.name, err, bytes.Equal(plain, tc.data))
		}
		if payload, _ := s.aead.Open(nil, sealed[1:sealHeader], sealed[sealHeader:], ad); payload[0] != tc.enc {
			t.Errorf("%s: encoding %d; want %d", tc.name, payload[0], tc.enc)
		}
		if _, _, err := s.open(nil, nil, sealed, []byte("other")); err == nil {
			t.Errorf("%s: opened with other additional data", tc.name)
		}
		for _, i := range []int{0, sealHeader / 2, len(sealed) / 2, len(sealed) - 1} {
			bad := bytes.Clone(sealed)
			bad[i] ^= 0x80
			if _, _, err := s.open(nil, nil, bad, ad); err == nil {
				t.Errorf("%s: opened with byte %d flipped", tc.name, i)
			}
		}
		if _, _, err := s.open(nil, nil, sealed[:len(sealed)-1], ad); err == nil {
			t.Errorf("%s: opened truncated", tc.name)
		}
	}
	// The same plaintext always gets the same ID; another key another ID.
	k2, _ := newKey()
	s2, _ := newSealer(k2)
	if s.chunkID(text) != s.chunkID(bytes.Clone(text)) || s.chunkID(text) == s2.chunkID(text) {
		t.Error("chunk IDs are not a keyed function of the content")
	}
}
