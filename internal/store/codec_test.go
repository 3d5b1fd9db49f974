package store

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	tests := []Object{
		{Kind: "Workload", Name: "w"},
		{Kind: "Workload", Name: "web", ResourceVersion: 1 << 40, Generation: 12, UID: "0123456789abcdef0123456789abcdef",
			CreatedAt:   time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC),
			Labels:      map[string]string{"strata.dev/tenant": "shop", "b": "", "a": "1"},
			Annotations: map[string]string{"note": strings.Repeat("n", 300)},
			Spec:        json.RawMessage(`{"image":"x"}`), Status: json.RawMessage(`{"ready":true}`)},
		{Kind: "Segment", Name: "s", CreatedAt: time.Unix(0, 0).UTC(), Spec: json.RawMessage(strings.Repeat(`[`, 5000))},
	}
	for _, want := range tests {
		t.Run(want.Name, func(t *testing.T) {
			data := encodeRecord(want)
			got, err := decodeRecord(want.Kind, want.Name, data)
			if err != nil {
				t.Fatal(err)
			}
			if !equalObjects(got, want) {
				t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
			}
			// Every truncation is reported as damage, never a panic or a
			// silently shorter object.
			for i := range len(data) {
				if _, err := decodeRecord(want.Kind, want.Name, data[:i]); err == nil {
					t.Fatalf("record cut to %d of %d bytes decoded without error", i, len(data))
				}
			}
			if _, err := decodeRecord(want.Kind, want.Name, append(data, 0)); err == nil {
				t.Error("record with a trailing byte decoded without error")
			}
		})
	}
}

// TestRecordDamage feeds the decoder random bytes and random changes of
// valid records: it must return an object or an error naming the key, and
// never panic.
func TestRecordDamage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	valid := encodeRecord(Object{Kind: "Workload", Name: "web", ResourceVersion: 7, Generation: 2, UID: "u",
		Labels: map[string]string{"a": "b"}, Spec: json.RawMessage(`{"a":1}`)})
	for range 20000 {
		var data []byte
		if rng.IntN(2) == 0 {
			data = make([]byte, rng.IntN(40))
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
		} else {
			data = append([]byte(nil), valid...)
			data[rng.IntN(len(data))] = byte(rng.Uint32())
		}
		if _, err := decodeRecord("Workload", "web", data); err != nil && !strings.Contains(err.Error(), "Workload/web") {
			t.Fatalf("error %q does not name the object", err)
		}
	}
}
