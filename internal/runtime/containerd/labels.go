package containerd

import (
	"strconv"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
)

// The driver's own container labels.
const (
	labelDriver    = runtime.LabelDriverPrefix + "driver"     // Name: marks a container the driver owns
	labelLogPath   = runtime.LabelDriverPrefix + "log-path"   // InstanceSpec.LogPath
	labelStartedAt = runtime.LabelDriverPrefix + "started-at" // when the task started, RFC 3339
	labelOOM       = runtime.LabelDriverPrefix + "oom-killed" // "true" once containerd reported an OOM kill
)

// ownedFilter selects the containers the driver owns.
var ownedFilter = `labels."` + labelDriver + `"==` + Name

// containerLabels returns the labels a new container for spec gets.
func containerLabels(spec runtime.InstanceSpec) map[string]string {
	l := make(map[string]string, len(spec.Labels)+5)
	for k, v := range spec.Labels {
		l[k] = v
	}
	l[labelDriver] = Name
	l[runtime.LabelWorkload] = spec.Workload
	l[runtime.LabelSlot] = strconv.Itoa(spec.Slot)
	l[runtime.LabelTier] = string(spec.Tier)
	if spec.LogPath != "" {
		l[labelLogPath] = spec.LogPath
	}
	return l
}

// identity is what a container's labels say about its instance.
type identity struct {
	workload  string
	slot      int
	tier      v1alpha1.Tier
	startedAt time.Time
	oom       bool
	labels    map[string]string // the caller's labels
}

func parseLabels(l map[string]string) identity {
	id := identity{
		workload: l[runtime.LabelWorkload],
		tier:     v1alpha1.Tier(l[runtime.LabelTier]),
		oom:      l[labelOOM] == "true",
	}
	id.slot, _ = strconv.Atoi(l[runtime.LabelSlot])
	id.startedAt, _ = time.Parse(time.RFC3339Nano, l[labelStartedAt])
	for k, v := range l {
		if runtime.ReservedLabel(k) {
			continue
		}
		if id.labels == nil {
			id.labels = map[string]string{}
		}
		id.labels[k] = v
	}
	return id
}
