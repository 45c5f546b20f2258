package workflow

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// CalendarFunc is the CEL function that adds an ISO 8601 duration, calendar months
// and years included, to a timestamp: add_calendar(now, 'P1M').
const CalendarFunc = "add_calendar"

// ErrCalendarDuration means an ISO 8601 duration names years or months where a
// fixed length of time is needed: they have no fixed length, so only CalendarFunc
// can add them, to a given timestamp.
var ErrCalendarDuration = errors.New("years and months have no fixed length")

// ParseDuration parses a fixed length of time, as every duration of a definition
// is written: Go syntax ("90s", "30m", "1h30m", "1.5s") or ISO 8601 ("PT90S",
// "P30D", "P1DT2H", "P2W", "PT0.25S"). An ISO day is 24 hours and a week 7 days:
// ironflow keeps time in UTC, where every day has 24 hours. Only the seconds of
// an ISO duration may have a fraction (a '.' or ',' and up to nine digits).
//
// Errors: one wrapping ErrCalendarDuration for an ISO duration with years or
// months ("P1M"), which have no fixed length (add them with CalendarFunc); an
// error saying what is wrong otherwise. Negative Go durations parse; callers that
// need a length check the sign.
func ParseDuration(s string) (time.Duration, error) {
	if !strings.HasPrefix(s, "P") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: use Go syntax such as 90s, 30m or 1h30m, or ISO 8601 such as PT90S or P30D", s)
		}
		return d, nil
	}
	iso, err := parseISODuration(s)
	if err != nil {
		return 0, err
	}
	if iso.years != 0 || iso.months != 0 {
		return 0, fmt.Errorf("duration %q: %w; use %s(now, '%s') in a timer's at expression", s, ErrCalendarDuration, CalendarFunc, s)
	}
	return iso.fixed, nil
}

// isoDuration is an ISO 8601 duration split into its calendar part (years and
// months, whose length depends on the date they are added to) and its fixed part
// (weeks, days, hours, minutes, seconds).
type isoDuration struct {
	years, months int
	fixed         time.Duration
}

// Bounds on the calendar part: a CEL timestamp lies within years 1 to 9999.
const maxCalendarYears = 10000

// parseISODuration parses "P[nY][nM][nW][nD][T[nH][nM][n[.f]S]]": at least one
// part, designators in that order, each at most once, digits only (a fraction on
// the seconds). Errors say what is wrong with s.
func parseISODuration(s string) (isoDuration, error) {
	bad := func(why string) (isoDuration, error) {
		return isoDuration{}, fmt.Errorf("invalid ISO 8601 duration %q: %s", s, why)
	}
	var out isoDuration
	rest := s[1:]
	if rest == "" {
		return bad("it has no parts; write P30D, PT90S or P1DT2H")
	}
	const dateOrder, timeOrder = "YMWD", "HMS"
	inTime, parts, next := false, 0, 0
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return bad("T appears twice")
			}
			inTime, next, rest = true, 0, rest[1:]
			if rest == "" {
				return bad("T must be followed by hours, minutes or seconds")
			}
			continue
		}
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return bad(fmt.Sprintf("expected a number at %q", rest))
		}
		whole := rest[:i]
		frac := ""
		if i < len(rest) && (rest[i] == '.' || rest[i] == ',') {
			j := i + 1
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			frac, i = rest[i+1:j], j
			if frac == "" || len(frac) > 9 {
				return bad("a fraction needs one to nine digits")
			}
		}
		if i == len(rest) {
			return bad(fmt.Sprintf("the number %s has no designator (Y, M, W, D, H, M or S)", rest))
		}
		unit := rest[i]
		rest = rest[i+1:]
		order := dateOrder
		if inTime {
			order = timeOrder
		}
		pos := strings.IndexByte(order[next:], unit)
		if pos < 0 {
			if strings.IndexByte(order, unit) >= 0 {
				return bad(fmt.Sprintf("%c is out of order or repeated", unit))
			}
			if inTime {
				return bad(fmt.Sprintf("%c is not a time designator (H, M or S after T)", unit))
			}
			return bad(fmt.Sprintf("%c is not a date designator (Y, M, W or D; put hours, minutes and seconds after T)", unit))
		}
		next += pos + 1
		if frac != "" && !(inTime && unit == 'S') {
			return bad("only seconds may have a fraction")
		}
		if len(whole) > 12 {
			return bad("a number is too large")
		}
		var n int64
		for _, c := range whole {
			n = n*10 + int64(c-'0')
		}
		parts++
		if !inTime && (unit == 'Y' || unit == 'M') {
			if n > maxCalendarYears*12 {
				return bad("too many years or months")
			}
			if unit == 'Y' {
				out.years = int(n)
			} else {
				out.months = int(n)
			}
			continue
		}
		var per time.Duration
		switch {
		case !inTime && unit == 'W':
			per = 7 * 24 * time.Hour
		case !inTime && unit == 'D':
			per = 24 * time.Hour
		case unit == 'H':
			per = time.Hour
		case unit == 'M':
			per = time.Minute
		default:
			per = time.Second
		}
		if n > math.MaxInt64/int64(per) {
			return bad("it is longer than the longest duration, about 292 years")
		}
		add := time.Duration(n) * per
		if frac != "" {
			ns := int64(0)
			for k := 0; k < 9; k++ {
				ns *= 10
				if k < len(frac) {
					ns += int64(frac[k] - '0')
				}
			}
			add += time.Duration(ns)
		}
		if out.fixed > math.MaxInt64-add {
			return bad("it is longer than the longest duration, about 292 years")
		}
		out.fixed += add
	}
	if parts == 0 {
		return bad("it has no parts; write P30D, PT90S or P1DT2H")
	}
	return out, nil
}

// addCalendar adds d to t in UTC: first the years and months, keeping the day of
// the month unless the target month is shorter, in which case it becomes that
// month's last day (Jan 31 + P1M is Feb 28, or Feb 29 in a leap year), the time
// of day unchanged; then the fixed part (weeks, days, hours, minutes, seconds).
// The error says when the result falls outside the years 1 to 9999.
func addCalendar(t time.Time, d isoDuration) (time.Time, error) {
	t = t.UTC()
	y, m, day := t.Date()
	months := int(m) - 1 + d.months + 12*d.years
	ny, nm := y+months/12, time.Month(months%12+1)
	if last := daysIn(ny, nm); day > last {
		day = last
	}
	out := time.Date(ny, nm, day, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC).Add(d.fixed)
	if out.Year() < 1 || out.Year() > 9999 {
		return time.Time{}, fmt.Errorf("%s: the result is outside the years 1 to 9999", CalendarFunc)
	}
	return out, nil
}

// daysIn returns the number of days of month m of year y.
func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
