package cli

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/place"
	"strata.dev/strata/internal/scale"
)

// traceArg is one --trace: a demand trace and the workload it is for ("" for every
// workload with spec.scaling).
type traceArg struct {
	workload, file string
}

func parseTraceArgs(args []string) []traceArg {
	out := make([]traceArg, 0, len(args))
	for _, a := range args {
		if w, f, ok := strings.Cut(a, "="); ok {
			out = append(out, traceArg{workload: w, file: f})
		} else {
			out = append(out, traceArg{file: a})
		}
	}
	return out
}

// sizeForForecast sets the replicas of the workloads the traces are for to what the
// forecast peak of their demand over days needs, and says how. A bare trace applies to
// every workload with spec.scaling.
func sizeForForecast(items []place.Item, traces []traceArg, days int, format string) ([]v1alpha1.ForecastSizing, diag.List) {
	if days < 1 {
		return nil, diag.List{{Msg: fmt.Sprintf("--forecast %d: give the days to plan for, 1 or more", days)}}
	}
	if len(traces) == 0 {
		return nil, diag.List{{Msg: "--forecast needs the demand to forecast from: --trace FILE or --trace WORKLOAD=FILE",
			Hint: "strata simulate trace writes a synthetic one"}}
	}
	var (
		out  []v1alpha1.ForecastSizing
		errs diag.List
	)
	for _, ta := range traces {
		targets := forecastTargets(items, ta.workload)
		if len(targets) == 0 {
			msg := "no workload has spec.scaling to size from " + ta.file
			if ta.workload != "" {
				msg = fmt.Sprintf("--trace %s=%s: no workload %s in the inputs", ta.workload, ta.file, ta.workload)
			}
			errs = append(errs, &diag.Error{File: ta.file, Msg: msg, Hint: "name the workload: --trace WORKLOAD=FILE"})
			continue
		}
		tr, terrs := readTraceFile(ta.file, format)
		if len(terrs) > 0 {
			errs = append(errs, terrs...)
			continue
		}
		peak, model, err := forecastPeak(tr, days)
		if err != nil {
			errs = append(errs, &diag.Error{File: ta.file, Msg: err.Error(), Hint: "give a longer trace (a few days at least)"})
			continue
		}
		for _, it := range targets {
			out = append(out, sizeOne(it, ta.file, tr, model, days, peak))
		}
	}
	return out, errs
}

// forecastTargets are the items a trace is for.
func forecastTargets(items []place.Item, workload string) []place.Item {
	var out []place.Item
	for _, it := range items {
		if (workload == "" && it.Workload.Spec.Scaling != nil) || it.Workload.Metadata.Name == workload {
			out = append(out, it)
		}
	}
	return out
}

func readTraceFile(file, format string) (*scale.Trace, diag.List) {
	f, err := os.Open(file)
	if err != nil {
		return nil, diag.List{{File: file, Msg: err.Error(), Hint: "check the file name"}}
	}
	defer f.Close()
	return scale.ReadTrace(file, f, scale.ReadOptions{Format: scale.Format(format)})
}

// forecastPeak fits the model the backtest prefers on the trace and returns the highest
// demand it forecasts over the next days.
func forecastPeak(tr *scale.Trace, days int) (float64, string, error) {
	n := len(tr.CPU)
	holdout := min(n/5, int(scale.Day/tr.Step))
	if holdout < 1 {
		return 0, "", fmt.Errorf("the trace has %d readings: too few to forecast from", n)
	}
	sel, err := scale.Select(tr.CPU, tr.Step, scale.Candidates(), holdout)
	if err != nil {
		return 0, "", err
	}
	h := int(time.Duration(days) * scale.Day / tr.Step)
	return slices.Max(sel.Best.Predict(h)), sel.Best.Name(), nil
}

// sizeOne sets one workload's replicas for the peak.
func sizeOne(it place.Item, file string, tr *scale.Trace, model string, days int, peak float64) v1alpha1.ForecastSizing {
	w := it.Workload
	pol := scale.PolicyFor(w.Spec.Scaling)
	perReplica := w.Spec.Resources.CPU.AsApproximateFloat64() * float64(pol.TargetCPUPercent) / 100
	s := v1alpha1.ForecastSizing{Workload: w.Metadata.Name, Trace: file, Model: model, Days: days,
		PeakCores: round3(peak), HistoryPeakCores: round3(slices.Max(tr.CPU)), ReplicaCores: round3(perReplica)}
	need := int32(1)
	if perReplica > 0 {
		need = int32(math.Ceil(peak / perReplica))
	} else {
		s.Note = "no cpu request: one replica"
	}
	if s.HistoryPeakCores > s.PeakCores*1.2 {
		s.Note = fmt.Sprintf("the trace peaked at %.2f cores, above the forecast: bursts are not foreseen", s.HistoryPeakCores)
	}
	if w.Spec.Scaling != nil {
		if need < int32(pol.Min) {
			need = int32(pol.Min)
		}
		if need > int32(pol.Max) {
			s.Note = fmt.Sprintf("the peak needs %d replicas but spec.scaling.max is %d: the plan sizes for the need; raise max, or expect shortage", need, pol.Max)
		}
	}
	s.Replicas = need
	w.Spec.Replicas = &need
	return s
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
