package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/assess"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/store"
)

// maxBody bounds a request body.
const maxBody = 8 << 20

// Options configure a Server.
type Options struct {
	Store  *store.Store
	Engine *assess.Engine // the assessment policy; default assess.Default()
	Logger *slog.Logger
	// Ready runs the daemon's readiness checks (store, drivers) for /readyz; nil:
	// always ready.
	Ready func(ctx context.Context) []Check
	// Recorder records events such as assessment violations; may be nil.
	Recorder Recorder
	// Images imports image tarballs (POST .../images); nil: not served.
	Images runtime.ImageImporter
	// Drivers run exec in instances; DataDir holds instance logs (logs/ID.log).
	Drivers *runtime.Registry
	DataDir string
	// Metrics serves GET /metrics (the Prometheus text format); nil: not served. Like
	// every route it needs a token on the TLS listener and none on the unix socket.
	Metrics http.Handler
	// Middleware, when set, wraps the routed API (the unix socket's and, inside the token
	// check, the TLS listener's); the daemon measures requests with it. It may read
	// r.Pattern, the route that matched, once the wrapped handler has returned.
	Middleware func(http.Handler) http.Handler
	// History answers GET .../workloads/NAME/history[?instance=ID] with the recent usage
	// of a workload's instances; nil: not served.
	History func(workload, instance string) v1alpha1.UsageHistory
	// Snapshots serves POST .../workloads/NAME/snapshots, POST .../snapshots/SNAP/restore
	// and DELETE .../snapshots/SNAP; nil: not served.
	Snapshots Snapshotter
	// Backups serves the backup routes (backuprepos, backups, drills); nil: not served.
	Backups Backupper
	// Capacity is what the host offers to workloads' requests: admission refuses a workload
	// whose replicas would take the sum of requests past it, unless forced. nil: not
	// checked; a zero field: that resource is not checked.
	Capacity *v1alpha1.Capacity
	// VMImageDirs are the directories VM kernels, initrds and disks may come from; the
	// first is where relative names resolve (runtime.ImagesDir of DataDir). Empty:
	// runtime.ImagesDir(DataDir) alone, or no check without a DataDir.
	VMImageDirs []string
	// UI serves the dashboard under /ui/ (GET); nil: not served. On the TLS listener its
	// files are served without a token (they hold no data); the API calls it makes need one.
	UI http.Handler
	// Host checks, at admission, what a workload or segment claims of the host: published
	// ports and segment subnets the host itself uses; nil: no such check.
	Host HostClaims
	// Limits bound connections and requests; zero fields take their defaults.
	Limits Limits
}

// HostClaims tells whether the host can give a workload or segment what it asks for.
// Admission asks it about every published port and every given segment subnet, after
// the checks that need no host (api/v1alpha1's validation, clashes between objects).
type HostClaims interface {
	// PublishRefusal is why host port `port` of protocol ("tcp", "udp") may not be
	// published, or nil.
	PublishRefusal(ctx context.Context, protocol string, port int) (*Refusal, error)
	// SubnetRefusal is why subnet may not be a segment's, or nil.
	SubnetRefusal(ctx context.Context, subnet netip.Prefix) (*Refusal, error)
}

// Refusal is why the host refuses a claim, and what to do instead.
type Refusal struct{ Reason, Hint string }

// Recorder records an event about an object.
type Recorder interface {
	Record(ctx context.Context, e objects.Event)
}

// Server serves the API.
type Server struct {
	store  *store.Store
	engine *assess.Engine
	log    *slog.Logger
	ready  func(ctx context.Context) []Check
	rec    Recorder
	mux    *http.ServeMux
	h      http.Handler // mux, wrapped by Options.Middleware
	images runtime.ImageImporter
	drv    *runtime.Registry
	data   string
	host   HostClaims
	limits Limits
	// refused logs refused requests and connections at a bounded rate.
	refused *refusals
	// capacity and vmDirs are Options.Capacity and Options.VMImageDirs.
	capacity *v1alpha1.Capacity
	vmDirs   []string
}

// New builds a Server.
func New(o Options) *Server {
	s := &Server{store: o.Store, engine: o.Engine, log: o.Logger, ready: o.Ready, rec: o.Recorder, mux: http.NewServeMux(),
		images: o.Images, drv: o.Drivers, data: o.DataDir, host: o.Host, limits: o.Limits.withDefaults(), capacity: o.Capacity}
	for _, d := range o.VMImageDirs {
		s.vmDirs = append(s.vmDirs, filepath.Clean(d))
	}
	if len(s.vmDirs) == 0 && o.DataDir != "" {
		s.vmDirs = []string{runtime.ImagesDir(o.DataDir)}
	}
	if s.engine == nil {
		s.engine = assess.Default()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.refused = newRefusals(s.log, s.limits.RefusalLogInterval)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("POST "+Prefix+"images", s.importImage)
	s.mux.HandleFunc("GET "+StoreBackupPath, s.storeBackup)
	s.mux.HandleFunc("GET "+Prefix+"workloads/{name}/logs", s.logs)
	s.mux.HandleFunc("POST "+Prefix+"workloads/{name}/exec", s.exec)
	s.mux.HandleFunc("GET "+Prefix+NodesPath, s.nodes)
	s.mux.HandleFunc("GET "+Prefix+"{resource}", s.list)
	s.mux.HandleFunc("POST "+Prefix+"{resource}", s.create)
	s.mux.HandleFunc("GET "+Prefix+"{resource}/{name}", s.get)
	s.mux.HandleFunc("PUT "+Prefix+"{resource}/{name}", s.update)
	s.mux.HandleFunc("DELETE "+Prefix+"{resource}/{name}", s.delete)
	if o.History != nil {
		history := o.History
		s.mux.HandleFunc("GET "+Prefix+"workloads/{name}/history", func(w http.ResponseWriter, r *http.Request) {
			name, ok := s.workloadName(w, r)
			if !ok {
				return
			}
			if _, err := s.store.Get(r.Context(), v1alpha1.KindWorkload, name); err != nil {
				s.writeError(w, r, err)
				return
			}
			writeJSON(w, http.StatusOK, history(name, r.URL.Query().Get("instance")))
		})
	}
	if o.Snapshots != nil {
		s.serveSnapshots(o.Snapshots)
	}
	if o.Backups != nil {
		s.serveBackups(o.Backups)
	}
	if o.Metrics != nil {
		s.mux.Handle("GET /metrics", o.Metrics)
	}
	if o.UI != nil {
		s.mux.Handle("GET "+UIPath, o.UI)
	}
	s.h = s.mux
	if o.Middleware != nil {
		s.h = o.Middleware(s.mux)
	}
	s.h = bounded(s.h, s.limits.RequestTimeout)
	return s
}

// Handler returns the API's HTTP handler.
func (s *Server) Handler() http.Handler { return s.h }

// Check is one readiness check that /readyz reports.
type Check struct {
	Name    string
	OK      bool
	Message string
}

// readyz answers 200 when every check passes and 503 otherwise. The body lists the
// checks, one per line ("[+] containerd: containerd 1.7.24 at ...", "[-] gvisor: ..."),
// when one fails or when the query has ?verbose; else it is "ok".
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	var checks []Check
	if s.ready != nil {
		checks = s.ready(r.Context())
	}
	ok := true
	for _, c := range checks {
		ok = ok && c.OK
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if ok && !r.URL.Query().Has("verbose") {
		_, _ = io.WriteString(w, "ok\n")
		return
	}
	var b strings.Builder
	for _, c := range checks {
		mark := "[+]"
		if !c.OK {
			mark = "[-]"
		}
		fmt.Fprintf(&b, "%s %s: %s\n", mark, c.Name, c.Message)
	}
	if ok {
		b.WriteString("ok\n")
	} else {
		b.WriteString("not ready\n")
	}
	_, _ = io.WriteString(w, b.String())
}

// ListenUnix listens on a unix socket that only the daemon's user may use (mode 0600),
// replacing a stale socket file left by a daemon that died.
func ListenUnix(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		return nil, fmt.Errorf("another daemon serves %s: give this one its own --socket (and --data-dir)", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("restrict socket %s: %w", path, err)
	}
	return l, nil
}

// Serve serves the API on l until ctx ends, then shuts down gracefully. Its connections
// are not capped (l is the unix socket, for the host's root), but time out like the TCP
// listener's.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	hs := &http.Server{Handler: s.h, ReadHeaderTimeout: s.limits.ReadHeaderTimeout, IdleTimeout: s.limits.IdleTimeout,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	return serveUntil(ctx, hs, l)
}

// serveUntil serves hs on l until ctx ends, then shuts it down gracefully.
func serveUntil(ctx context.Context, hs *http.Server, l net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(shut) // watches end with ctx; what remains is closed
		return nil
	}
}

// maxNameLen is the longest name of any object: a DNS subdomain, the store's limit.
const maxNameLen = 253

// nameProblem says what is wrong with name as the name of a res, or "" when nothing is.
// Workloads and segments are named by users: DNS labels, as admission checks. The kinds
// the daemon records have names of its own making, which the store's key rules bound.
func nameProblem(res objects.Resource, name string) string {
	if !res.Recorded {
		if len(validation.IsDNS1123Label(name)) > 0 {
			return "a " + res.Singular + " name is a DNS label: at most 63 lower case letters, digits and '-', starting and ending with a letter or digit, such as payments-1"
		}
		return ""
	}
	if name == "" || len(name) > maxNameLen {
		return fmt.Sprintf("a %s name has 1 to %d characters", res.Singular, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' || c == '/' {
			return "a " + res.Singular + " name is printable ASCII without spaces or '/'"
		}
	}
	return ""
}

// quoteName quotes a name from a request for an error message, shortened when long.
func quoteName(name string) string {
	if len(name) > 64 {
		return strconv.Quote(name[:64]) + fmt.Sprintf(" (and %d more bytes)", len(name)-64)
	}
	return strconv.Quote(name)
}

// pathName returns the {name} of the request's path when it can name a res; otherwise it
// answers 400 and returns false.
func (s *Server) pathName(w http.ResponseWriter, r *http.Request, res objects.Resource) (string, bool) {
	name := r.PathValue("name")
	if msg := nameProblem(res, name); msg != "" {
		writeStatus(w, http.StatusBadRequest, ReasonBadRequest, fmt.Sprintf("bad %s name %s in the path: %s", res.Singular, quoteName(name), msg))
		return "", false
	}
	return name, true
}

// workloadName returns the workload {name} of a request's path, or answers 400.
func (s *Server) workloadName(w http.ResponseWriter, r *http.Request) (string, bool) {
	res, _ := objects.ResourceFor(v1alpha1.KindWorkload)
	return s.pathName(w, r, res)
}

func (s *Server) resource(w http.ResponseWriter, r *http.Request) (objects.Resource, bool) {
	res, ok := objects.ResourceFor(r.PathValue("resource"))
	if !ok || res.Plural != r.PathValue("resource") {
		writeStatus(w, http.StatusNotFound, ReasonNotFound,
			fmt.Sprintf("no resource %q: use workloads, segments or events", r.PathValue("resource")))
		return objects.Resource{}, false
	}
	return res, true
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	res, ok := s.resource(w, r)
	if !ok {
		return
	}
	if r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1" {
		longLived(w)
		s.watch(w, r, res)
		return
	}
	recs, rev, err := s.store.List(r.Context(), res.Kind)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := List{APIVersion: v1alpha1.GroupVersion, Kind: res.Kind + "List", ResourceVersion: strconv.FormatUint(rev, 10), Items: make([]any, 0, len(recs))}
	for _, rec := range recs {
		obj, err := objects.Decode(rec)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out.Items = append(out.Items, obj)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	res, ok := s.resource(w, r)
	if !ok {
		return
	}
	name, ok := s.pathName(w, r, res)
	if !ok {
		return
	}
	rec, err := s.store.Get(r.Context(), res.Kind, name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	obj, err := objects.Decode(rec)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, obj)
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	res, ok := s.resource(w, r)
	if !ok {
		return
	}
	name, ok := s.pathName(w, r, res)
	if !ok {
		return
	}
	var rv uint64
	if v := r.URL.Query().Get("resourceVersion"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeStatus(w, http.StatusBadRequest, ReasonBadRequest, "resourceVersion must be a number")
			return
		}
		rv = n
	}
	// A workload is deleted in two steps: marked here, removed from the store by the
	// controller once its instances are gone (force=true removes it at once; the controller
	// then removes the instances it finds without a workload).
	if res.Kind == v1alpha1.KindWorkload && !forced(r) {
		if err := s.markDeleted(r.Context(), name, rv); err != nil {
			s.writeError(w, r, err)
			return
		}
		writeStatus(w, http.StatusAccepted, "Deleting", res.Singular+" "+name+" is being deleted: its instances are stopped, then it is removed")
		return
	}
	if res.Kind == v1alpha1.KindSnapshot {
		writeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed",
			"a snapshot's files go with it: delete it with DELETE "+Prefix+"workloads/WORKLOAD/snapshots/NAME (strata snapshot delete)")
		return
	}
	if res.Kind == v1alpha1.KindSegment {
		users, err := s.segmentUsers(r.Context(), name)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if len(users) > 0 {
			writeStatus(w, http.StatusConflict, ReasonConflict, fmt.Sprintf("segment %s still has workloads: %s; move them to another segment (spec.segment) or delete them first",
				name, strings.Join(users, ", ")))
			return
		}
	}
	if err := s.store.Delete(r.Context(), res.Kind, name, rv); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeStatus(w, http.StatusOK, "Deleted", res.Singular+" "+name+" deleted")
}

// markDeleted sets the deletion annotation on a workload.
func (s *Server) markDeleted(ctx context.Context, name string, rv uint64) error {
	for attempt := 0; ; attempt++ {
		cur, err := s.store.Get(ctx, v1alpha1.KindWorkload, name)
		if err != nil {
			return err
		}
		if _, done := cur.Annotations[v1alpha1.AnnotationDeletionRequested]; done {
			return nil
		}
		if rv != 0 && cur.ResourceVersion != rv {
			return fmt.Errorf("delete workload %s at resourceVersion %d: %w", name, rv, store.ErrConflict)
		}
		if cur.Annotations == nil {
			cur.Annotations = map[string]string{}
		}
		cur.Annotations[v1alpha1.AnnotationDeletionRequested] = time.Now().UTC().Format(time.RFC3339)
		_, err = s.store.Update(ctx, cur)
		if errors.Is(err, store.ErrConflict) && rv == 0 && attempt < 5 {
			continue
		}
		return err
	}
}

func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read body: %w", errBadRequest, err)
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("%w: the body is larger than %d bytes", errBadRequest, maxBody)
	}
	return b, nil
}
