// Package pipeline composes the stages: it turns the saved high-water mark and
// the clock into windows, runs extract, transform and load for each, and turns
// their manifests into the run report.
package pipeline

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
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
	// Since is where the very first window starts when there is no high-water
	// mark yet; zero means one window before Until.
	Since time.Time
	// Until replaces now minus SettleLag as the end of the last window.
	Until time.Time
	// Overlap is how far back each window's query reaches (see extract).
	Overlap time.Duration
	// Statuses replaces the extract's status filter per document table, e.g.
	// {"payments": {"Processed", "Posted"}}; an empty list filters nothing.
	Statuses map[string][]string

	// ERPAccountField is the account's custom field holding the ERP customer
	// (default ERPAccountId__c), read case-insensitively.
	ERPAccountField string
	// DocTypes are the document types moved (stage.DocTypes names); nil means all five.
	DocTypes []string
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

	RequestLog  io.Writer // Zuora request log, secrets redacted
	Logger      *slog.Logger
	Now         func() time.Time
	RunID       string
	CodeVersion string
}

// ConfigError is a missing or invalid setting: exit status 2.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

// IsConfigError reports whether err is a usage or configuration error.
func IsConfigError(err error) bool {
	var c *ConfigError
	return errors.As(err, &c)
}

// setting names a required setting by its environment variable and flag.
type setting struct {
	env, flag string
	value     string
}

func require(settings ...setting) error {
	for _, s := range settings {
		if s.value == "" {
			return &ConfigError{Msg: fmt.Sprintf("%s is not set (set the environment variable or pass --%s); to try the tool without a tenant, run: zuora-erp-etl demo", s.env, s.flag)}
		}
	}
	return nil
}

func (c *Config) needZuora() error {
	return require(
		setting{"ZUORA_BASE_URL", "zuora-base-url", c.ZuoraBaseURL},
		setting{"ZUORA_CLIENT_ID", "zuora-client-id", c.ZuoraClientID},
		setting{"ZUORA_CLIENT_SECRET", "zuora-client-secret", c.ZuoraClientSecret},
	)
}

func (c *Config) needERP() error {
	return require(
		setting{"ERP_BASE_URL", "erp-base-url", c.ERPBaseURL},
		setting{"ERP_TOKEN", "erp-token", c.ERPToken},
	)
}

func (c *Config) withDefaults() Config {
	d := *c
	if d.WindowSize <= 0 {
		d.WindowSize = time.Hour
	}
	if d.SettleLag <= 0 {
		d.SettleLag = 5 * time.Minute
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

// NewRunID returns a run id that sorts by start time and is safe in stage keys
// and in Zuora-Track-Id.
func NewRunID(now time.Time) string {
	return "run-" + now.UTC().Format("20060102T150405.000Z")
}
