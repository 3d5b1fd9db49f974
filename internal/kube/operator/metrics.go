package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// A Source tells the predictive scaler a Workload's demand: the CPU its pods used, in cores,
// in total, over time. The scaler calls Demand once a decision, every interval.
type Source interface {
	// Demand measures t's demand now and returns it with its history. An error wrapping
	// ErrMetricsUnavailable says that the cluster serves no metrics at all.
	Demand(ctx context.Context, t Target) (Demand, error)
}

// ErrMetricsUnavailable says that the cluster does not serve the metrics API (metrics.k8s.io), so no
// demand is known; install metrics-server.
var ErrMetricsUnavailable = errors.New("the metrics API (metrics.k8s.io/v1beta1) is not served: install metrics-server")

// Target is the Workload whose demand is asked for.
type Target struct {
	Namespace, Workload string
	// Selector selects the Workload's pods.
	Selector labels.Set
}

// Demand is what a Source knows of one Workload's demand.
type Demand struct {
	// Cores is the pods' demand now (the mean of the last demand window); Pods is how many
	// pods were measured (0: none yet, and nothing is decided).
	Cores float64
	Pods  int
	// Series is the total demand per sample, Step apart, oldest first, ending now.
	Series []float64
	Step   time.Duration
}

// Defaults of MetricsOptions.
const (
	DefaultMetricsHistory = time.Hour
	DefaultDemandWindow   = time.Minute
)

// MetricsOptions tune a MetricsSource.
type MetricsOptions struct {
	// Step is the time between two samples: the scaler's interval. Default
	// DefaultScalerInterval.
	Step time.Duration
	// History is how much of the past a workload's ring of samples keeps. Default
	// DefaultMetricsHistory, an hour.
	History time.Duration
	// Window is how far back Demand.Cores is averaged. Default DefaultDemandWindow.
	Window time.Duration
	// Now is the clock of the samples. Default time.Now.
	Now func() time.Time
}

// MetricsSource is a Source that reads the Kubernetes metrics API, as `kubectl top pods`
// does: every call lists the PodMetrics (metrics.k8s.io/v1beta1, served by metrics-server)
// of the target's pods by label selector, sums the CPU of their containers, and appends the
// sum to the workload's ring of samples, which keeps History. Rings live in memory: an
// operator that restarts (or a newly elected leader) forecasts again once it has sampled
// scale.ForecastPoints times, and decides reactively only until then.
type MetricsSource struct {
	rc    rest.Interface
	o     MetricsOptions
	mu    sync.Mutex
	rings map[string]*ring // by namespace/workload
}

var _ Source = (*MetricsSource)(nil)

// NewMetricsSource reads the metrics API of the cluster cfg reaches.
func NewMetricsSource(cfg *rest.Config, o MetricsOptions) (*MetricsSource, error) {
	if o.Step <= 0 {
		o.Step = DefaultScalerInterval
	}
	if o.History <= 0 {
		o.History = DefaultMetricsHistory
	}
	if o.Window <= 0 {
		o.Window = DefaultDemandWindow
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := rest.CopyConfig(cfg)
	c.APIPath = "/apis"
	c.GroupVersion = &schema.GroupVersion{Group: "metrics.k8s.io", Version: "v1beta1"}
	c.NegotiatedSerializer = clientgoscheme.Codecs.WithoutConversion()
	c.AcceptContentTypes = "application/json"
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("metrics API client: %w", err)
	}
	return &MetricsSource{rc: rc, o: o, rings: map[string]*ring{}}, nil
}

// podMetricsList is the part of a metrics.k8s.io/v1beta1 PodMetricsList that demand needs.
type podMetricsList struct {
	Items []struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Containers []struct {
			Name  string                       `json:"name"`
			Usage map[string]resource.Quantity `json:"usage"`
		} `json:"containers"`
	} `json:"items"`
}

// Sample lists the PodMetrics of t's pods now: the CPU their containers use, in cores, and
// how many pods reported.
func (m *MetricsSource) Sample(ctx context.Context, t Target) (cores float64, pods int, err error) {
	raw, err := m.rc.Get().Namespace(t.Namespace).Resource("pods").
		Param("labelSelector", labels.SelectorFromSet(t.Selector).String()).Do(ctx).Raw()
	if err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsServiceUnavailable(err) {
			return 0, 0, fmt.Errorf("%w (%w)", ErrMetricsUnavailable, err)
		}
		return 0, 0, fmt.Errorf("pod metrics of workload %s/%s: %w", t.Namespace, t.Workload, err)
	}
	var list podMetricsList
	if err := json.Unmarshal(raw, &list); err != nil {
		return 0, 0, fmt.Errorf("pod metrics of workload %s/%s: %w", t.Namespace, t.Workload, err)
	}
	for _, p := range list.Items {
		for _, c := range p.Containers {
			if q, ok := c.Usage[string(corev1.ResourceCPU)]; ok {
				cores += float64(q.MilliValue()) / 1000
			}
		}
	}
	return cores, len(list.Items), nil
}

// Demand samples t and returns its ring.
func (m *MetricsSource) Demand(ctx context.Context, t Target) (Demand, error) {
	cores, pods, err := m.Sample(ctx, t)
	if err != nil {
		return Demand{}, err
	}
	now := m.o.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, r := range m.rings {
		if now.Sub(r.last()) > m.o.History {
			delete(m.rings, k) // a workload no longer asked for
		}
	}
	key := t.Namespace + "/" + t.Workload
	r := m.rings[key]
	if r == nil {
		r = &ring{size: max(1, int(m.o.History/m.o.Step))}
		m.rings[key] = r
	}
	if pods == 0 {
		// No pod reporting is no measurement, not zero demand: the history stays, and
		// nothing is decided now.
		return Demand{Series: r.series(), Step: m.o.Step}, nil
	}
	r.add(sample{at: now, cores: cores, pods: pods}, m.o.Step)
	return r.demand(now, m.o.Window, m.o.Step), nil
}

// sample is one measurement of a workload's pods.
type sample struct {
	at    time.Time
	cores float64
	pods  int
}

// ring keeps a workload's last size samples, oldest first.
type ring struct {
	size    int
	samples []sample
}

// add appends s, or replaces the last sample when that is less than half a step old (two
// calls within one interval), so that samples stay about a step apart.
func (r *ring) add(s sample, step time.Duration) {
	if n := len(r.samples); n > 0 && s.at.Sub(r.samples[n-1].at) < step/2 {
		r.samples[n-1] = s
		return
	}
	r.samples = append(r.samples, s)
	if len(r.samples) > r.size {
		r.samples = append(r.samples[:0], r.samples[len(r.samples)-r.size:]...)
	}
}

func (r *ring) last() time.Time {
	if len(r.samples) == 0 {
		return time.Time{}
	}
	return r.samples[len(r.samples)-1].at
}

// series is the ring's demand per sample, oldest first.
func (r *ring) series() []float64 {
	out := make([]float64, len(r.samples))
	for i, s := range r.samples {
		out[i] = s.cores
	}
	return out
}

// demand is the ring as a Demand at now: Cores is the mean of the samples of the last
// window, Pods the latest sample's.
func (r *ring) demand(now time.Time, window, step time.Duration) Demand {
	d := Demand{Step: step, Series: r.series()}
	sum, n := 0.0, 0
	for _, s := range r.samples {
		if s.at.After(now.Add(-window)) && !s.at.After(now) {
			sum += s.cores
			n++
		}
	}
	if n > 0 {
		d.Cores, d.Pods = sum/float64(n), r.samples[len(r.samples)-1].pods
	}
	return d
}
