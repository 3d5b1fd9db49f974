package scale

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
)

// TestPlotSVG checks that the plot is well-formed XML with a line per series, time labels and
// the shortage marks.
func TestPlotSVG(t *testing.T) {
	tr := Synthetic(4, 5*time.Minute, 1, SynthOptions{})
	rep, err := Simulate(SimInput{Trace: tr, Policy: PolicyFor(&v1alpha1.Scaling{Max: 200}), ReplicaCPU: 1, Tier: v1alpha1.TierVM})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := PlotSVG(&buf, tr, rep.Policies); err != nil {
		t.Fatal(err)
	}
	svg := buf.String()
	dec := xml.NewDecoder(strings.NewReader(svg))
	counts := map[string]int{}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
		}
	}
	if counts["svg"] != 1 || counts["polyline"] != 4 {
		t.Errorf("elements %v: want one svg and four polylines (demand and three policies)", counts)
	}
	for _, want := range []string{">Mon 1<", ">Tue 2<", ">reactive<", ">predictive<", ">oracle<", `fill="` + shortColor + `"`} {
		if !strings.Contains(svg, want) {
			t.Errorf("the plot lacks %s", want)
		}
	}
}
