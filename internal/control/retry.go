package control

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"

	"strata.dev/strata/internal/store"
)

// retries holds what backs off: workloads whose last reconcile failed, and replica slots
// whose last start failed. Only the controller's Run goroutine uses it.
type retries struct {
	// workloads: consecutive failed reconciles and when the next may run.
	workloads map[string]retry
	// starts: consecutive failed starts of a slot from one spec, by instance ID.
	starts map[string]retry
	// seen identifies the last version of each workload's spec and metadata the
	// controller was told of, to tell a change by the user from a status write.
	seen map[string]string
}

type retry struct {
	failures int
	at       time.Time
	hash     string // the spec hash the start failed with (starts only)
	msg      string // why the last start failed (starts only)
}

func newRetries() *retries {
	return &retries{workloads: map[string]retry{}, starts: map[string]retry{}, seen: map[string]string{}}
}

// failed records a failed reconcile of workload name at now and returns when the next
// one is due: base * 2^(failures-1), at most max.
func (r *retries) failed(name string, now time.Time, base, max time.Duration) time.Time {
	w := r.workloads[name]
	w.failures++
	w.at = now.Add(backoff(base, max, w.failures-1))
	r.workloads[name] = w
	return w.at
}

// succeeded forgets workload name's failures.
func (r *retries) succeeded(name string) { delete(r.workloads, name) }

// due returns when workload name may be reconciled, given it would be at t: t, or the
// end of its backoff when that is later.
func (r *retries) due(name string, t time.Time) time.Time {
	if w, ok := r.workloads[name]; ok && w.at.After(t) {
		return w.at
	}
	return t
}

// changed reports whether o (a workload from the store's watch) differs from the last
// version seen in what the user controls (its spec, labels, annotations, or it is a new
// object), rather than only in its status; a change ends the workload's backoff.
func (r *retries) changed(ev store.Event) bool {
	o := ev.Object
	if ev.Type == store.Deleted {
		delete(r.seen, o.Name)
		r.forget(o.Name)
		return true
	}
	id := versionID(o)
	if r.seen[o.Name] == id {
		return false
	}
	r.seen[o.Name] = id
	r.forget(o.Name)
	return true
}

// forget ends workload name's backoff and its slots'.
func (r *retries) forget(name string) {
	delete(r.workloads, name)
	for id := range r.starts {
		if slot, ok := strings.CutPrefix(id, name+"-"); ok {
			if _, err := strconv.Atoi(slot); err == nil {
				delete(r.starts, id)
			}
		}
	}
}

// startWait returns how long slot id must still wait before another start from the
// spec with hash (0: start now), given the slots' failed starts, and why its last start
// failed. A new spec starts at once.
func startWait(starts map[string]retry, id, hash string, now time.Time) (time.Duration, string) {
	s, ok := starts[id]
	if !ok || s.hash != hash || !s.at.After(now) {
		return 0, ""
	}
	return s.at.Sub(now), s.msg
}

// startFailed records a failed start of slot id from the spec with hash.
func (r *retries) startFailed(id, hash, msg string, now time.Time, base, max time.Duration) {
	s := r.starts[id]
	if s.hash != hash {
		s = retry{hash: hash}
	}
	s.failures++
	s.at = now.Add(backoff(base, max, s.failures-1))
	s.msg = msg
	r.starts[id] = s
}

// started forgets slot id's failed starts.
func (r *retries) started(id string) { delete(r.starts, id) }

// versionID identifies o's user-controlled state: its UID, spec generation, labels and
// annotations.
func versionID(o store.Object) string {
	h := sha256.New()
	h.Write([]byte(o.UID + "\x00" + strconv.FormatInt(o.Generation, 10) + "\x00"))
	for _, m := range []map[string]string{o.Labels, o.Annotations} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			h.Write([]byte(k + "\x00" + m[k] + "\x00"))
		}
		h.Write([]byte{1})
	}
	return hex.EncodeToString(h.Sum(nil))
}
