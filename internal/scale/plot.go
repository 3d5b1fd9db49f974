package scale

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"time"
)

// Plot geometry, in SVG user units.
const (
	plotW, plotH                    = 1200, 560
	padLeft, padRight               = 70, 170
	padTop, chartH                  = 40, 380
	shortRowH, shortRowGap          = 10, 6
	plotFont                        = `font-family="sans-serif" font-size="12"`
	demandColor, shortColor         = "#222222", "#d62728"
	chartLeft, chartW               = padLeft, plotW - padLeft - padRight
	chartBottom                     = padTop + chartH
	legendX                         = plotW - padRight + 16
	shortTop                        = chartBottom + 40
	minBarWidth             float64 = 0.6
)

var policyColors = map[string]string{Reactive: "#1f77b4", Predictive: "#2ca02c", Oracle: "#ff7f0e"}

// PlotSVG draws demand and each policy's ready capacity over the trace as an SVG image, with a
// row per policy below the chart marking the intervals in shortage.
func PlotSVG(w io.Writer, tr *Trace, results []Result) error {
	n := len(tr.CPU)
	if n == 0 {
		return fmt.Errorf("nothing to plot: the trace is empty")
	}
	top := 0.0
	for _, v := range tr.CPU {
		top = math.Max(top, v)
	}
	for _, r := range results {
		for _, v := range r.Capacity {
			top = math.Max(top, v)
		}
	}
	yStep := niceStep(top / 5)
	yMax := math.Max(yStep, math.Ceil(top*1.05/yStep)*yStep)
	x := func(i int) float64 { return chartLeft + float64(chartW)*float64(i)/float64(n) }
	y := func(v float64) float64 { return chartBottom - float64(chartH)*v/yMax }

	bw := bufio.NewWriter(w)
	height := shortTop + len(results)*(shortRowH+shortRowGap) + 30
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" %s>`+"\n", plotW, max(plotH, height), plotW, max(plotH, height), plotFont)
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(bw, `<text x="%d" y="24" font-size="15">Demand and ready capacity (cores), %s from %s</text>`+"\n",
		chartLeft, spanText(tr.Duration()), tr.Start.UTC().Format("2006-01-02 15:04 MST"))

	// Horizontal grid and the y axis.
	for v := 0.0; v <= yMax+yStep/2; v += yStep {
		fmt.Fprintf(bw, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", chartLeft, chartLeft+chartW, y(v), y(v))
		fmt.Fprintf(bw, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", chartLeft-8, y(v)+4, trimFloat(v))
	}
	// Time ticks.
	every, layout := tickSpacing(tr.Duration())
	first := tr.Start.Truncate(every)
	if first.Before(tr.Start) {
		first = first.Add(every)
	}
	for t := first; t.Before(tr.Start.Add(tr.Duration())); t = t.Add(every) {
		px := chartLeft + float64(chartW)*float64(t.Sub(tr.Start))/float64(tr.Duration())
		fmt.Fprintf(bw, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#e5e5e5"/>`+"\n", px, px, padTop, chartBottom)
		fmt.Fprintf(bw, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px, chartBottom+18, t.UTC().Format(layout))
	}
	fmt.Fprintf(bw, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>`+"\n", chartLeft, padTop, chartW, chartH)

	// Series as step lines: demand first, then each policy's capacity.
	stepLine(bw, tr.CPU, x, y, demandColor, "", 1.2)
	for _, r := range results {
		dash := ""
		if r.Name == Oracle {
			dash = `stroke-dasharray="4 3"`
		}
		stepLine(bw, r.Capacity, x, y, colorOf(r.Name), dash, 1)
	}

	// Legend.
	legend := func(row int, color, label string) {
		ly := padTop + 10 + row*22
		fmt.Fprintf(bw, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", legendX, legendX+22, ly, ly, color)
		fmt.Fprintf(bw, `<text x="%d" y="%d">%s</text>`+"\n", legendX+28, ly+4, html.EscapeString(label))
	}
	legend(0, demandColor, "demand")
	for i, r := range results {
		legend(i+1, colorOf(r.Name), r.Name)
	}

	// Shortage rows.
	fmt.Fprintf(bw, `<text x="%d" y="%d">intervals in shortage (demand above ready capacity)</text>`+"\n", chartLeft, shortTop-8)
	for i, r := range results {
		ry := shortTop + i*(shortRowH+shortRowGap)
		fmt.Fprintf(bw, `<rect x="%d" y="%d" width="%d" height="%d" fill="#f4f4f4"/>`+"\n", chartLeft, ry, chartW, shortRowH)
		fmt.Fprintf(bw, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", chartLeft-8, ry+shortRowH-1, html.EscapeString(r.Name))
		for k, s := range r.Short {
			if s <= 0 {
				continue
			}
			wd := math.Max(minBarWidth, x(k+1)-x(k))
			fmt.Fprintf(bw, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x(k), ry, wd, shortRowH, shortColor)
		}
		fmt.Fprintf(bw, `<text x="%d" y="%d">%s%% of the time</text>`+"\n", legendX, ry+shortRowH-1, trimFloat(math.Round(r.ShortagePercent*100)/100))
	}
	fmt.Fprintln(bw, "</svg>")
	return bw.Flush()
}

func stepLine(w io.Writer, vs []float64, x func(int) float64, y func(float64) float64, color, extra string, width float64) {
	fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="%g" %s points="`, color, width, extra)
	for i, v := range vs {
		fmt.Fprintf(w, "%.1f,%.1f %.1f,%.1f ", x(i), y(v), x(i+1), y(v))
	}
	fmt.Fprintln(w, `"/>`)
}

func colorOf(name string) string {
	if c, ok := policyColors[name]; ok {
		return c
	}
	return "#9467bd"
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// tickSpacing picks time ticks for a span: daily for more than three days, else 6-hourly or
// hourly.
func tickSpacing(span time.Duration) (time.Duration, string) {
	switch {
	case span > 21*Day:
		return Week, "Mon Jan 2"
	case span > 3*Day:
		return Day, "Mon 2"
	case span > 12*time.Hour:
		return 6 * time.Hour, "Mon 15:04"
	}
	return time.Hour, "15:04"
}

func trimFloat(v float64) string { return fmt.Sprint(math.Round(v*1000) / 1000) }

// spanText prints a span in days when it is whole days, else as a duration.
func spanText(d time.Duration) string {
	switch {
	case d == Day:
		return "1 day"
	case d > 0 && d%Day == 0:
		return fmt.Sprintf("%d days", d/Day)
	}
	return d.String()
}
