package scale

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Seasons of demand.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

// A Forecaster predicts demand from its past. Fit learns from a series whose points are step
// apart (and fits the forecaster's parameters); Observe appends one more point without
// refitting; Predict returns the next h points after the last one fitted or observed.
type Forecaster interface {
	// Name says which model this is, such as holt-winters-daily.
	Name() string
	Fit(series []float64, step time.Duration) error
	Observe(y float64)
	Predict(h int) []float64
}

// ErrShortSeries is returned by Fit when a series is too short for the model.
var ErrShortSeries = errors.New("series too short")

// period is how many points of step make one season.
func period(season, step time.Duration) (int, error) {
	if step <= 0 {
		return 0, fmt.Errorf("step %v: must be positive", step)
	}
	m := int((season + step/2) / step)
	if m < 1 {
		return 0, fmt.Errorf("season %v is shorter than the step %v", season, step)
	}
	return m, nil
}

// seasonName names a season for model names: daily, weekly, or the duration.
func seasonName(season time.Duration) string {
	switch season {
	case Day:
		return "daily"
	case Week:
		return "weekly"
	}
	return season.String()
}

// SeasonalNaive forecasts that each point repeats the point one season earlier. With a season
// of one step it is the naive forecast: the last value, repeated.
type SeasonalNaive struct {
	Season time.Duration
	last   []float64 // the last season, a ring; next is the oldest
	next   int
}

// Name is seasonal-naive-daily, seasonal-naive-weekly, or naive for a one-step season.
func (s *SeasonalNaive) Name() string {
	if len(s.last) == 1 {
		return "naive"
	}
	return "seasonal-naive-" + seasonName(s.Season)
}

// Fit keeps the series' last season. It needs one season of points.
func (s *SeasonalNaive) Fit(series []float64, step time.Duration) error {
	m, err := period(s.Season, step)
	if err != nil {
		return err
	}
	if len(series) < m {
		return fmt.Errorf("%w: %s needs %d points (one season), got %d", ErrShortSeries, s.Name(), m, len(series))
	}
	s.last = append([]float64(nil), series[len(series)-m:]...)
	s.next = 0
	return nil
}

// Observe replaces the oldest point of the season with y.
func (s *SeasonalNaive) Observe(y float64) {
	if len(s.last) == 0 {
		return
	}
	s.last[s.next] = y
	s.next = (s.next + 1) % len(s.last)
}

// Predict repeats the last season.
func (s *SeasonalNaive) Predict(h int) []float64 {
	if len(s.last) == 0 {
		return nil
	}
	out := make([]float64, h)
	for k := range out {
		out[k] = s.last[(s.next+k)%len(s.last)]
	}
	return out
}

// HoltWinters is additive exponential smoothing with a level, a trend and one or more
// seasonal components. With one season it is Holt-Winters; with Seasons {Day, Week} it is
// Taylor's double-seasonal variant, whose weekly component learns how each day of the week
// differs from the daily shape. As in Taylor's paper, the forecast adds Phi^k times the last
// one-step error: short-lived deviations (a busy hour, a burst) persist for a while, and the
// error term carries them into the next points. The parameters are fitted by a coordinate
// search over a grid, minimizing the sum of squared one-step errors.
type HoltWinters struct {
	// Seasons are the seasonal periods, shortest first.
	Seasons []time.Duration
	// Alpha (level), Beta (trend), Gammas (one per season) and Phi (error persistence)
	// are set by Fit.
	Alpha, Beta, Phi float64
	Gammas           []float64
	state            *smoother
}

// NewHoltWinters returns a Holt-Winters model with the given seasons, shortest first.
func NewHoltWinters(seasons ...time.Duration) *HoltWinters {
	return &HoltWinters{Seasons: seasons}
}

// Name is holt-winters-daily, holt-winters-weekly or holt-winters-daily-weekly.
func (hw *HoltWinters) Name() string {
	name := "holt-winters"
	for _, s := range hw.Seasons {
		name += "-" + seasonName(s)
	}
	return name
}

// Grids of the coordinate search.
var (
	levelGrid  = []float64{0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9}
	trendGrid  = []float64{0, 0.001, 0.01, 0.05}
	seasonGrid = []float64{0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7}
	errorGrid  = []float64{0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95}
)

// searchRounds bounds the coordinate search: each round tries every grid value of one
// parameter with the others fixed, for every parameter in turn.
const searchRounds = 3

// Fit initializes the components from the first (longest) season, fits the smoothing
// parameters, and runs the model over the whole series. It needs the longest season plus
// one shortest season of points.
func (hw *HoltWinters) Fit(series []float64, step time.Duration) error {
	if len(hw.Seasons) == 0 {
		return errors.New("holt-winters needs at least one season")
	}
	periods := make([]int, len(hw.Seasons))
	for i, s := range hw.Seasons {
		m, err := period(s, step)
		if err != nil {
			return err
		}
		if m < 2 {
			return fmt.Errorf("season %v: needs at least two points of %v", s, step)
		}
		periods[i] = m
	}
	init := periods[len(periods)-1]
	if need := init + periods[0]; len(series) < need {
		return fmt.Errorf("%w: %s needs %d points, got %d", ErrShortSeries, hw.Name(), need, len(series))
	}
	params := make([]float64, 3+len(periods)) // alpha, beta, phi, gammas
	params[0], params[1], params[2] = 0.2, 0.001, 0.5
	for i := range periods {
		params[3+i] = 0.1
	}
	sse := func(p []float64) float64 {
		s := newSmoother(series, periods, p)
		return s.run(series, init)
	}
	best := sse(params)
	for range searchRounds {
		improved := false
		for i := range params {
			grid := seasonGrid
			switch i {
			case 0:
				grid = levelGrid
			case 1:
				grid = trendGrid
			case 2:
				grid = errorGrid
			}
			keep := params[i]
			for _, v := range grid {
				if v == keep {
					continue
				}
				params[i] = v
				if e := sse(params); e < best {
					best, keep, improved = e, v, true
				}
			}
			params[i] = keep
		}
		if !improved {
			break
		}
	}
	hw.Alpha, hw.Beta, hw.Phi, hw.Gammas = params[0], params[1], params[2], append([]float64(nil), params[3:]...)
	hw.state = newSmoother(series, periods, params)
	hw.state.run(series, init)
	return nil
}

// Observe updates the level, trend and seasonal components with y.
func (hw *HoltWinters) Observe(y float64) {
	if hw.state != nil {
		hw.state.update(y)
	}
}

// Predict extends the level and trend and adds the seasonal components.
func (hw *HoltWinters) Predict(h int) []float64 {
	if hw.state == nil {
		return nil
	}
	out := make([]float64, h)
	for k := range out {
		out[k] = hw.state.forecast(k + 1)
	}
	return out
}

// smoother is the state of additive exponential smoothing.
type smoother struct {
	level, trend float64
	seasons      [][]float64 // one ring per seasonal component
	pos          int         // the index of the next point
	lastErr      float64     // the last one-step error of the smoothed components
	alpha, beta  float64
	phi          float64
	gammas       []float64
}

// newSmoother initializes the state from the first stretch of periods[last] points: the trend
// is the change of the mean from the first to the second stretch (0 when the series is
// shorter), the level the trend line through the first stretch's mean, the shortest season
// the mean shape of its periods around that line, and each longer season what remains of the
// first stretch once the line and the shorter seasons are taken out.
func newSmoother(series []float64, periods []int, params []float64) *smoother {
	s := &smoother{alpha: params[0], beta: params[1], phi: params[2], gammas: params[3:]}
	n := periods[len(periods)-1]
	avg := mean(series[:n])
	if len(series) >= 2*n {
		s.trend = (mean(series[n:2*n]) - avg) / float64(n)
	}
	mid := float64(n-1) / 2
	// The level before point 0, so that the first forecast is the trend line at point 0.
	s.level = avg - s.trend*(mid+1)
	s.seasons = make([][]float64, len(periods))
	for c, m := range periods {
		idx := make([]float64, m)
		counts := make([]int, m)
		for t := range n {
			rest := series[t] - (avg + s.trend*(float64(t)-mid))
			for prev := range c {
				rest -= s.seasons[prev][t%periods[prev]]
			}
			idx[t%m] += rest
			counts[t%m]++
		}
		for j := range idx {
			if counts[j] > 0 {
				idx[j] /= float64(counts[j])
			}
		}
		s.seasons[c] = idx
	}
	return s
}

// run updates the state with every point of series, and returns the sum of squared one-step
// errors from point skip on.
func (s *smoother) run(series []float64, skip int) float64 {
	sse := 0.0
	for t, y := range series {
		if t >= skip {
			e := y - s.forecast(1)
			sse += e * e
		}
		s.update(y)
	}
	return sse
}

func (s *smoother) forecast(k int) float64 {
	f := s.level + float64(k)*s.trend
	for _, season := range s.seasons {
		f += season[(s.pos+k-1)%len(season)]
	}
	return f + math.Pow(s.phi, float64(k))*s.lastErr
}

func (s *smoother) update(y float64) {
	sum := 0.0
	for _, season := range s.seasons {
		sum += season[s.pos%len(season)]
	}
	prev := s.level
	s.lastErr = y - (s.level + s.trend + sum)
	s.level = s.alpha*(y-sum) + (1-s.alpha)*(s.level+s.trend)
	s.trend = s.beta*(s.level-prev) + (1-s.beta)*s.trend
	for c, season := range s.seasons {
		i := s.pos % len(season)
		old := season[i]
		others := sum - old
		season[i] = s.gammas[c]*(y-s.level-others) + (1-s.gammas[c])*old
	}
	s.pos++
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// Candidates returns the models Select chooses from by default: seasonal naive with a daily
// and a weekly season, Holt-Winters with a daily season, and the double-seasonal
// (daily + weekly) Holt-Winters.
func Candidates() []Forecaster {
	return []Forecaster{
		&SeasonalNaive{Season: Day},
		&SeasonalNaive{Season: Week},
		NewHoltWinters(Day),
		NewHoltWinters(Day, Week),
	}
}

// Score is one candidate's backtest.
type Score struct {
	Model string `json:"model"`
	// MASE is the mean absolute one-step error over the holdout divided by the mean absolute
	// error of the seasonal naive forecast (daily, or one step for series shorter than a day
	// and a point) over the training part. Below 1 beats that naive forecast. NaN when the
	// model could not be fitted.
	MASE float64 `json:"mase"`
	// Err says why the model could not be fitted.
	Err string `json:"error,omitempty"`
}

// Selection is the outcome of Select.
type Selection struct {
	// Best is the chosen model, fitted on the training part and updated with the holdout: it
	// forecasts what follows the whole series.
	Best   Forecaster
	Scores []Score
}

// Select chooses a model by backtest. Each candidate is fitted on all but the last holdout
// points, then forecasts those one step at a time, observing each real point after
// forecasting it (as the simulator uses forecasts). The candidate with the lowest MASE wins;
// MASE rather than MAPE because demand can be zero, where percentage errors are undefined.
// Candidates are modified: the returned Best is one of them.
func Select(series []float64, step time.Duration, candidates []Forecaster, holdout int) (Selection, error) {
	n := len(series)
	if holdout < 1 || holdout >= n {
		return Selection{}, fmt.Errorf("holdout %d: must be between 1 and %d, the series' length less one", holdout, n-1)
	}
	train, test := series[:n-holdout], series[n-holdout:]
	scale := naiveScale(train, step)
	var sel Selection
	best := math.Inf(1)
	for _, c := range candidates {
		if err := c.Fit(train, step); err != nil {
			sel.Scores = append(sel.Scores, Score{Model: c.Name(), MASE: math.NaN(), Err: err.Error()})
			continue
		}
		sum := 0.0
		for _, y := range test {
			sum += math.Abs(y - c.Predict(1)[0])
			c.Observe(y)
		}
		mase := sum / float64(len(test)) / scale
		sel.Scores = append(sel.Scores, Score{Model: c.Name(), MASE: mase})
		if mase < best {
			best, sel.Best = mase, c
		}
	}
	if sel.Best == nil {
		return sel, fmt.Errorf("%w: no candidate model could be fitted on %d points", ErrShortSeries, len(train))
	}
	return sel, nil
}

// naiveScale is the mean absolute error of the seasonal naive forecast over series (daily
// season when the series is long enough, else one step); 1 when that error is zero.
func naiveScale(series []float64, step time.Duration) float64 {
	m, err := period(Day, step)
	if err != nil || len(series) <= m {
		m = 1
	}
	if len(series) <= m {
		return 1
	}
	sum := 0.0
	for t := m; t < len(series); t++ {
		sum += math.Abs(series[t] - series[t-m])
	}
	if sum == 0 {
		return 1
	}
	return sum / float64(len(series)-m)
}

// MAPE is the mean absolute percentage error of forecast against actual, in percent, over the
// points where actual is not zero.
func MAPE(actual, forecast []float64) float64 {
	sum, n := 0.0, 0
	for i := range min(len(actual), len(forecast)) {
		if actual[i] == 0 {
			continue
		}
		sum += math.Abs((actual[i] - forecast[i]) / actual[i])
		n++
	}
	if n == 0 {
		return 0
	}
	return 100 * sum / float64(n)
}
