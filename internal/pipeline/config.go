// Package pipeline composes the stages: it turns the saved high water and
// the clock into windows, runs extract, transform and load for each, and turns
// their manifests into the run report.
package pipeline

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
	"github.com/zuora-erp-etl/zuora-erp-etl/transform"
)

// Config is everything a pipeline run needs. cmd/ fills it from the
// environment and flags.
type Config struct {
	ZuoraBaseURL      string
	ZuoraClientID     string
	ZuoraClientSecret string
	ERPBaseURL        string
	ERPToken          string
	StageURL          string

	// WindowSize is the length of a window (default 1h); windows end on
	// multiples of it so hourly runs produce hourly windows.
	WindowSize time.Duration
	// SettleLag keeps the last window this far behind now (default 5m).
	SettleLag time.Duration
	// Since is where the stage's history starts: given to the first run of a
	// stage, recorded in it before any window is tried, and from then on only
	// accepted when it is the same (a backfill of earlier history is Extract).
	Since time.Time
	// Until replaces now minus SettleLag as the end of the last window; a
	// later time is clamped to now minus SettleLag.
	Until time.Time
	// MaxWindows caps the windows one Run or Extract processes (default 24);
	// the rest are left for the next one, and the report says so.
	MaxWindows int
	// Overlap is how far back each window's query reaches (see extract).
	Overlap time.Duration
	// Statuses replaces the extract's status filter per document table, e.g.
	// {"payments": {"Processed", "Posted"}}; an empty list filters nothing.
	Statuses map[string][]string

	// ERPAccountField is the account's custom field holding the ERP customer
	// (default ERPAccountId__c), read case-insensitively.
	ERPAccountField string
	// DocTypes are the types moved (documents and application kinds, as
	// stage.Moved completes them); nil means every one.
	DocTypes []stage.DocType
	// UnapplyAmounts is how the tenant writes an unapply's amount: negative
	// (the default, "") or positive; see CheckUnapplyAmounts.
	UnapplyAmounts string
	// ZuoraEntityID is sent as Zuora-Entity-Ids on every Zuora call (multi-entity tenants).
	ZuoraEntityID string
	// ZuoraRate caps Zuora requests per minute (0: no cap), to stay under a sandbox's limits.
	ZuoraRate int

	SQLDir string
	// Slices splits each window's query range into this many time slices
	// walked concurrently (default 1).
	Slices           int
	ZuoraConcurrency int
	ERPConcurrency   int
	BreakerThreshold int
	ZuoraRetry       retry.Policy
	ERPRetry         retry.Policy
	ERPTimeout       time.Duration

	// LeaseTTL is how long the stage's lease lives without renewal (default
	// stage.DefaultLeaseTTL): the longest a killed writer blocks the stage.
	LeaseTTL time.Duration
	// ReadOnly opens a stage that must exist, for commands that only read it.
	ReadOnly bool

	// Progress hears how each window advances (pages fetched, documents
	// posted); nil hears nothing.
	Progress Progress
	// Command names what runs, for the run record ("run", "schedule").
	Command string
	// Settings are this invocation's settings that differ from their
	// defaults, as the user names them (secrets never): the run record keeps them.
	Settings map[string]string

	RequestLog  io.Writer // Zuora request log, secrets redacted
	Logger      *slog.Logger
	Now         func() time.Time
	RunID       string
	CodeVersion string
}

// ConfigError is a missing or invalid setting: exit status 2. Nothing was
// lost; the user fixes the setting and runs the same command again.
type ConfigError struct {
	Msg string // what is wrong, without naming flags or environment variables
	// Settings are the Config fields to check, e.g. "ZuoraClientSecret"; cmd
	// names their flags and environment variables.
	Settings []string
	Missing  bool  // the settings are not set at all
	Next     *Step // a command that does what the user may have meant
	NextFor  string
}

func (e *ConfigError) Error() string {
	msg := e.Msg
	if len(e.Settings) > 0 {
		msg = strings.Join(e.Settings, ", ") + ": " + msg
	}
	if e.Next != nil {
		msg += "; " + e.NextFor + ": " + e.Next.Command
	}
	return msg
}

// IsConfigError reports whether err is a usage or configuration error.
func IsConfigError(err error) bool {
	var c *ConfigError
	return errors.As(err, &c)
}

// missing returns a ConfigError for the first field whose value is empty.
func missing(fields ...[2]string) error {
	for _, f := range fields {
		if f[1] == "" {
			return &ConfigError{Msg: "not set", Settings: []string{f[0]}, Missing: true,
				Next: &Step{Command: "demo"}, NextFor: "to try the tool without a tenant, run"}
		}
	}
	return nil
}

func (c *Config) needZuora() error {
	if err := missing(
		[2]string{"ZuoraBaseURL", c.ZuoraBaseURL},
		[2]string{"ZuoraClientID", c.ZuoraClientID},
		[2]string{"ZuoraClientSecret", c.ZuoraClientSecret},
	); err != nil {
		return err
	}
	return httpURL("ZuoraBaseURL", c.ZuoraBaseURL)
}

func (c *Config) needERP() error {
	if err := missing(
		[2]string{"ERPBaseURL", c.ERPBaseURL},
		[2]string{"ERPToken", c.ERPToken},
	); err != nil {
		return err
	}
	return httpURL("ERPBaseURL", c.ERPBaseURL)
}

// httpURL checks that field holds an absolute http(s) URL.
func httpURL(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &ConfigError{Msg: fmt.Sprintf("%q is not an http(s) URL such as https://host", raw), Settings: []string{field}}
	}
	return nil
}

// CheckUnapplyAmounts checks the unapply convention (docs/zuora-api.md §7,
// fact 6): transform.UnapplyNegative, transform.UnapplyPositive or "".
func CheckUnapplyAmounts(v string) error {
	if _, err := transform.ParseUnapplyAmounts(v); err != nil {
		return &ConfigError{Msg: fmt.Sprintf("%q: want %s (an unapply's amount is negative) or %s (it is unsigned, as the apply's)",
			v, transform.UnapplyNegative, transform.UnapplyPositive), Settings: []string{"UnapplyAmounts"}}
	}
	return nil
}

// MinWindow is the shortest window: shorter ones would only multiply
// requests, and Zuora's data settles in minutes.
const MinWindow = time.Minute

// checkWindows validates the settings that plan windows.
func (c *Config) checkWindows() error {
	switch {
	case c.WindowSize < MinWindow:
		return &ConfigError{Msg: fmt.Sprintf("window length %s: want at least %s, e.g. 1h", c.WindowSize, MinWindow), Settings: []string{"WindowSize"}}
	case c.SettleLag < 0:
		return &ConfigError{Msg: fmt.Sprintf("settle lag %s: want a positive duration such as 5m", c.SettleLag), Settings: []string{"SettleLag"}}
	case c.MaxWindows < 1:
		return &ConfigError{Msg: fmt.Sprintf("%d: want at least 1", c.MaxWindows), Settings: []string{"MaxWindows"}}
	case !c.Since.IsZero() && !c.Until.IsZero() && !c.Since.Before(c.Until):
		return &ConfigError{Msg: fmt.Sprintf("the start %s is not before the end %s", c.Since.Format(time.RFC3339), c.Until.Format(time.RFC3339)),
			Settings: []string{"Since", "Until"}}
	}
	return nil
}

func (c *Config) withDefaults() Config {
	d := *c
	if d.WindowSize == 0 {
		d.WindowSize = time.Hour
	}
	if d.SettleLag == 0 {
		d.SettleLag = 5 * time.Minute
	}
	if d.MaxWindows == 0 {
		d.MaxWindows = DefaultMaxWindows
	}
	if d.StageURL == "" {
		d.StageURL = "./stage"
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.RunID == "" {
		d.RunID = NewRunID(d.Now())
	}
	return d
}

// DefaultMaxWindows is how many windows one run processes at most: a day of
// hourly windows.
const DefaultMaxWindows = 24

// NewRunID returns a run id that sorts by start time and is safe in stage keys
// and in Zuora-Track-Id.
func NewRunID(now time.Time) string {
	return "run-" + now.UTC().Format("20060102T150405.000Z")
}
